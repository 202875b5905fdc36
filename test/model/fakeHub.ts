/**
 * A local stand-in for the Hugging Face hub that answers the way the real one does (as huggingface_hub expects):
 *  - HEAD/GET /{repo}/resolve/{rev}/{path} (datasets: /datasets/{repo}/…), rev a branch (URL-encoded, e.g.
 *    refs%2Fconvert%2Fparquet) or a commit:
 *      small file → 307 to a relative /api/resolve-cache/{models|datasets}/{repo}/{commit}/{path}?… URL, which
 *                   answers 200 with X-Repo-Commit, ETag (the git blob sha1) and Content-Length;
 *      LFS file   → 302 to an absolute, signed, expiring URL on a separate storage server (another origin), with
 *                   X-Repo-Commit, X-Linked-Etag (the sha256) and X-Linked-Size;
 *      gated repo → 401 (no token) / 403 (a token without access) with X-Error-Code: GatedRepo;
 *      unknown repo → 401 RepoNotFound; unknown file → 404 EntryNotFound; unknown revision → 404 RevisionNotFound;
 *  - GET /api/{models|datasets}/{repo}/revision/{rev} → {sha, siblings: [{rfilename}]};
 *  - the storage server checks the signature and expiry (403 "Request has expired"), refuses a request carrying an
 *    Authorization header besides the signature (400, as S3 does), and serves Range requests (206).
 * Faults can be queued per route: an error status (with headers such as Retry-After), a connection that is
 * accepted and never answered, a body that stalls or drops after some bytes, a signed URL that is already expired.
 */
import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface HostedFile {
    body: Buffer;
    lfs?: boolean;
    /** Serve these bytes but announce this sha256 (a corrupt upload). */
    claimedSha256?: string;
}

/** One revision of a repo: its commit and files. */
export interface HostedRevision {
    commit: string;
    files: Map<string, HostedFile>;
}

export interface HostedRepo {
    type: "model" | "dataset";
    id: string;
    /** Branch or tag name → revision; "main" at least. */
    revisions: Map<string, HostedRevision>;
    /** Gated: only this token may download files. */
    gatedFor?: string;
}

export type Route = "resolve" | "resolve-cache" | "storage" | "listing";

export type Fault =
    | { kind: "status"; status: number; headers?: Record<string, string> }
    | { kind: "hang" }
    | { kind: "stall"; afterBytes: number }
    | { kind: "drop"; afterBytes: number }
    | { kind: "expired" };

interface FaultRule {
    route: Route;
    method: string | undefined;
    fault: Fault;
    left: number;
}

export interface LoggedRequest {
    route: Route | "unknown";
    method: string;
    url: string;
    auth: string | undefined;
    range: string | undefined;
}

export const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
export const gitBlobSha1 = (b: Buffer): string => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

/** Helper: files from [path, body, lfs?] triples. */
export function files(entries: Array<[string, string | Buffer, boolean?]>): Map<string, HostedFile> {
    return new Map(entries.map(([p, body, lfs]) => [p, { body: typeof body === "string" ? Buffer.from(body) : body, lfs: lfs ?? false }]));
}

export class FakeHub {
    readonly repos = new Map<string, HostedRepo>();
    readonly requests: LoggedRequest[] = [];
    /** How long a signed storage URL stays valid. */
    signedUrlTtlMs = 60_000;
    private readonly faults: FaultRule[] = [];
    private readonly secret = "fake-hub-signing-key";
    private readonly sockets = new Set<Socket>();
    private hub!: Server;
    private storage!: Server;
    endpoint = "";
    storageOrigin = "";

    add(repo: HostedRepo): this {
        this.repos.set(`${repo.type}:${repo.id}`, repo);
        return this;
    }

    /** Queues `fault` for the next `times` requests of `route` (and `method`, when given). */
    fault(route: Route, fault: Fault, times = 1, method?: "GET" | "HEAD"): this {
        this.faults.push({ route, method, fault, left: times });
        return this;
    }

    clearFaults(): void {
        this.faults.length = 0;
    }

    /** Logged requests of one route. */
    of(route: Route, method?: string): LoggedRequest[] {
        return this.requests.filter((r) => r.route === route && (method === undefined || r.method === method));
    }

    async start(): Promise<void> {
        const listen = async (server: Server): Promise<string> => {
            server.on("connection", (socket) => {
                this.sockets.add(socket);
                socket.on("close", () => this.sockets.delete(socket));
            });
            await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
            return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        };
        this.hub = createServer((req, res) => this.handleHub(req, res));
        this.storage = createServer((req, res) => this.handleStorage(req, res));
        this.endpoint = await listen(this.hub);
        this.storageOrigin = await listen(this.storage);
    }

    async stop(): Promise<void> {
        for (const socket of this.sockets) socket.destroy();
        await Promise.all([this.hub, this.storage].map((s) => new Promise((done) => s.close(done))));
    }

    private takeFault(route: Route, method: string): Fault | undefined {
        const rule = this.faults.find((f) => f.route === route && (f.method === undefined || f.method === method) && f.left > 0);
        if (!rule) return undefined;
        rule.left--;
        return rule.fault;
    }

    private log(route: LoggedRequest["route"], req: IncomingMessage): void {
        this.requests.push({ route, method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, range: req.headers.range });
    }

    /** Applies a status/hang fault; returns true when the request was answered (or left hanging) by it. */
    private applyEarlyFault(fault: Fault | undefined, res: ServerResponse): boolean {
        if (fault?.kind === "status") {
            res.writeHead(fault.status, { "content-type": "text/plain", ...fault.headers }).end(`fault ${fault.status}`);
            return true;
        }
        return fault?.kind === "hang";
    }

    private sendBody(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer, fault: Fault | undefined): void {
        res.writeHead(status, { ...headers, "content-length": String(body.length) });
        if (req.method === "HEAD") return void res.end();
        if (fault?.kind === "stall" || fault?.kind === "drop") {
            res.write(body.subarray(0, fault.afterBytes), () => {
                if (fault.kind === "drop") setTimeout(() => res.socket?.destroy(), 10);
            });
            return;
        }
        res.end(body);
    }

    /** The byte range a Range header asks for, applied to `body`. */
    private ranged(req: IncomingMessage, body: Buffer): { status: number; headers: Record<string, string>; body: Buffer } {
        const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
        if (!match) return { status: 200, headers: { "accept-ranges": "bytes" }, body };
        const start = Number(match[1]);
        if (start >= body.length) return { status: 416, headers: { "content-range": `bytes */${body.length}` }, body: Buffer.alloc(0) };
        return { status: 206, headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` }, body: body.subarray(start) };
    }

    private findRevision(repo: HostedRepo, rev: string): HostedRevision | undefined {
        return repo.revisions.get(rev) ?? [...repo.revisions.values()].find((r) => r.commit === rev);
    }

    private sign(sha: string, expires: number): string {
        return createHmac("sha256", this.secret).update(`${sha}:${expires}`).digest("hex");
    }

    private handleHub(req: IncomingMessage, res: ServerResponse): void {
        const url = new URL(req.url ?? "/", "http://hub");
        const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
        if (parts[0] === "api" && parts[1] === "resolve-cache") return this.resolveCache(req, res, parts.slice(2));
        if (parts[0] === "api" && (parts[1] === "models" || parts[1] === "datasets") && parts[4] === "revision") {
            this.log("listing", req);
            if (this.applyEarlyFault(this.takeFault("listing", req.method ?? ""), res)) return;
            const repo = this.repos.get(`${parts[1].slice(0, -1)}:${parts[2]}/${parts[3]}`);
            const revision = repo && this.findRevision(repo, parts.slice(5).join("/"));
            if (!repo) return void res.writeHead(401, { "x-error-code": "RepoNotFound", "x-error-message": "Repository not found" }).end();
            if (!revision) return void res.writeHead(404, { "x-error-code": "RevisionNotFound", "x-error-message": "Invalid rev id" }).end();
            res.writeHead(200, { "content-type": "application/json" });
            return void res.end(JSON.stringify({ id: repo.id, sha: revision.commit, siblings: [...revision.files.keys()].map((rfilename) => ({ rfilename })) }));
        }
        const dataset = parts[0] === "datasets";
        const at = dataset ? 1 : 0;
        if (parts[at + 2] !== "resolve") {
            this.log("unknown", req);
            return void res.writeHead(404).end();
        }
        this.log("resolve", req);
        const fault = this.takeFault("resolve", req.method ?? "");
        if (this.applyEarlyFault(fault, res)) return;
        const type = dataset ? "dataset" : "model";
        const repo = this.repos.get(`${type}:${parts[at]}/${parts[at + 1]}`);
        const rev = parts[at + 3]!;
        const filePath = parts.slice(at + 4).join("/");
        if (!repo) return void res.writeHead(401, { "x-error-code": "RepoNotFound", "x-error-message": "Repository not found" }).end();
        if (repo.gatedFor !== undefined && req.headers.authorization !== `Bearer ${repo.gatedFor}`) {
            const message = `Access to ${type} ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`;
            return void res.writeHead(req.headers.authorization ? 403 : 401, { "x-error-code": "GatedRepo", "x-error-message": message }).end();
        }
        const revision = this.findRevision(repo, rev);
        if (!revision) return void res.writeHead(404, { "x-error-code": "RevisionNotFound", "x-error-message": "Invalid rev id" }).end();
        const file = revision.files.get(filePath);
        if (!file) return void res.writeHead(404, { "x-error-code": "EntryNotFound", "x-error-message": "Entry not found", "x-repo-commit": revision.commit }).end();
        const encodedPath = filePath.split("/").map(encodeURIComponent).join("/");
        if (file.lfs) {
            const sha = file.claimedSha256 ?? sha256(file.body);
            const expires = fault?.kind === "expired" ? Date.now() - 1000 : Date.now() + this.signedUrlTtlMs;
            const location = `${this.storageOrigin}/repos/${sha.slice(0, 2)}/${sha}?Expires=${expires}&Signature=${this.sign(sha, expires)}`;
            res.writeHead(302, {
                location, "x-repo-commit": revision.commit, "x-linked-etag": `"${sha}"`, "x-linked-size": String(file.body.length),
                etag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${file.body.length}\n`))}"`,
            });
            return void res.end();
        }
        const etag = gitBlobSha1(file.body);
        const cachePath = `/api/resolve-cache/${type}s/${repo.id}/${revision.commit}/${encodedPath}`;
        const original = encodeURIComponent(`/${dataset ? "datasets/" : ""}${repo.id}/resolve/${rev}/${filePath}`);
        res.writeHead(307, { location: `${cachePath}?${original}=&etag=%22${etag}%22`, "x-repo-commit": revision.commit, etag: `"${etag}"` });
        res.end();
    }

    private resolveCache(req: IncomingMessage, res: ServerResponse, parts: string[]): void {
        this.log("resolve-cache", req);
        const fault = this.takeFault("resolve-cache", req.method ?? "");
        if (this.applyEarlyFault(fault, res)) return;
        const [types, org, name, commit, ...rest] = parts;
        const repo = this.repos.get(`${types?.slice(0, -1)}:${org}/${name}`);
        const revision = repo && this.findRevision(repo, commit ?? "");
        const file = revision?.files.get(rest.join("/"));
        if (!revision || !file || file.lfs) return void res.writeHead(404, { "x-error-code": "EntryNotFound" }).end();
        const part = this.ranged(req, file.body);
        this.sendBody(req, res, part.status, { ...part.headers, "x-repo-commit": revision.commit, etag: `"${gitBlobSha1(file.body)}"` }, part.body, fault);
    }

    private handleStorage(req: IncomingMessage, res: ServerResponse): void {
        this.log("storage", req);
        const fault = this.takeFault("storage", req.method ?? "");
        if (this.applyEarlyFault(fault, res)) return;
        const url = new URL(req.url ?? "/", "http://storage");
        const sha = /^\/repos\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
        const expires = Number(url.searchParams.get("Expires"));
        if (!sha || url.searchParams.get("Signature") !== this.sign(sha, expires)) {
            return void res.writeHead(403, { "content-type": "application/xml" }).end("<Error><Code>AccessDenied</Code><Message>Invalid signature</Message></Error>");
        }
        if (req.headers.authorization) {
            return void res.writeHead(400, { "content-type": "application/xml" }).end("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>");
        }
        if (Date.now() > expires) {
            return void res.writeHead(403, { "content-type": "application/xml" }).end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
        }
        const file = [...this.repos.values()].flatMap((r) => [...r.revisions.values()]).flatMap((r) => [...r.files.values()])
            .find((f) => f.lfs && (f.claimedSha256 ?? sha256(f.body)) === sha);
        if (!file) return void res.writeHead(404).end();
        const part = this.ranged(req, file.body);
        this.sendBody(req, res, part.status, part.headers, part.body, fault);
    }
}
