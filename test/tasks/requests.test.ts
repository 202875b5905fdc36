import { describe, expect, it } from "vitest";
import { buildTaskRequests, docLimit, isMultipleInput, processResults } from "../../src/evaluator/requests.js";
import { loadTaskDocs } from "../../src/tasks/datasets.js";
import { getTask } from "../../src/tasks/registry.js";
import type { Doc } from "../../src/tasks/types.js";
import { fixtures, requestsDigest, sharedData } from "./helpers.js";
import { describeWithData, taskDataDir } from "../testData.js";

// Digests from an independent Python implementation of the spec's prompt rules over the same files.
const REAL = [
    { task: "lambada_openai", docs: 5153, requests: 5153, digest: "719375daf0a1dd6b7c8c38a3db542cd9a25ecdc419ef86ca08b62ec7f0c6a36d" },
    { task: "piqa", docs: 1838, requests: 3676, digest: "4eaeac965a2816c7acc463d7a03c7fb105085725945506d0dc2994aacb526ef3" },
    { task: "arc_easy", docs: 2376, requests: 9501, digest: "2f13e87783723c442cc7582d08b016b6a336c4d2f13df8168e059c6d03b3fe54" },
    { task: "arc_challenge", docs: 1172, requests: 4687, digest: "5cdadae49d50fa4ddae29680bbef30a654c5f205bfdbab5300a70ead54548f2d" },
    { task: "winogrande", docs: 1267, requests: 2534, digest: "736843698588daa856d495e9abfb24c97dce3197fba06cd1f0e8382788d205fe" },
    // The reconstructed OpenBookQA test file (../shared/data/PROVENANCE.md): 500 questions × 4 choices.
    { task: "openbookqa", docs: 500, requests: 2000, digest: "f2b46af105ef26b6993a3de65dcd1a633f2a37aee9f583a2e3fe6e8347bad5a8" },
];
const FIXTURE = [
    { task: "lambada_openai", docs: 8, requests: 8, digest: "1e2b0e8e86b582e5c630419769a4da2f597a9503e951c2f49edbc77311efd383" },
    { task: "hellaswag", docs: 8, requests: 32, digest: "f6ebf83d4a5f3763ecbf35c624f069403e79ef2b68f5364c4a636e747aca9620" },
    { task: "piqa", docs: 8, requests: 16, digest: "ebd0df10631549a642ca08de81e310f65130976dfd4f264aea014d3d946a12c8" },
    { task: "arc_easy", docs: 8, requests: 32, digest: "e690ef8b42d6631ef68a49cba20bc83497fec58d0386c1daf4e8f6c3537d3bd3" },
    { task: "arc_challenge", docs: 6, requests: 24, digest: "537fb1771271f564f3cccb4e945221f758415a250099a15b2b0fa9b2c0aae012" },
    { task: "winogrande", docs: 8, requests: 16, digest: "b984d5b7e1194223343d6c8b4c6555916b2b3194120456b60b45df89b4b7d325" },
    { task: "openbookqa", docs: 8, requests: 32, digest: "902b0d679c883bcc90c9142547e7285d2ded7c2072c1f1696b3fcb6166cf54e5" },
];

describeWithData("requests from the real data (prompt-drift guard)", () => {
    it.each(REAL)("$task: $docs docs, $requests requests, sha256 of all requests", async ({ task, docs, requests, digest }) => {
        const spec = getTask(task);
        const loaded = await loadTaskDocs(spec, { dataDir: sharedData });
        expect(loaded.length).toBe(docs);
        const built = buildTaskRequests(spec, loaded);
        expect(built.length).toBe(requests);
        expect(requestsDigest(built)).toBe(digest);
    });
});

describe("requests from the bundled samples", () => {
    it.each(FIXTURE)("$task: sha256 of all requests", async ({ task, docs, requests, digest }) => {
        const spec = getTask(task);
        const loaded = await loadTaskDocs(spec, { dataDir: fixtures });
        expect(loaded.length).toBe(docs);
        const built = buildTaskRequests(spec, loaded);
        expect(built.length).toBe(requests);
        expect(requestsDigest(built)).toBe(digest);
    });
});

describe("hand-checked requests", () => {
    it("lambada splits on single spaces: a double space leaves a trailing space in the context (spec §2.1)", () => {
        const [r] = buildTaskRequests(getTask("lambada_openai"), [{ text: "the cat sat on the  mat" }]);
        expect(r).toEqual({ taskName: "lambada_openai", docId: 0, idx: 0, context: "the cat sat on the ", continuation: " mat" });
    });

    it("hellaswag worked example (spec §2.2): brackets, [title], capitalize(), leading space kept", async () => {
        const docs = await loadTaskDocs(getTask("hellaswag"), { dataDir: fixtures });
        const requests = buildTaskRequests(getTask("hellaswag"), docs.slice(0, 1));
        expect(requests.map((r) => [r.context, r.continuation])).toEqual([
            ["Home and Garden: How to clean a grill. Heat the grill for ten minutes. Then scrub the grates", "  Use a wire brush. Rinse well."],
            ["Home and Garden: How to clean a grill. Heat the grill for ten minutes. Then scrub the grates", " with a sponge made of paper."],
            ["Home and Garden: How to clean a grill. Heat the grill for ten minutes. Then scrub the grates", "  Leave the lid open overnight. Wait."],
            ["Home and Garden: How to clean a grill. Heat the grill for ten minutes. Then scrub the grates", " until the  bricks melt."],
        ]);
        expect(docs[3]!["query"]).toBe(
            "Personal Care and Style: How to tie a scarf. Fold the scarf in half lengthwise. Drape it around your neck. Pull the loose ends through the loop.",
        );
        expect(docs[4]!["query"]).toBe("Playing violin: A girl lifts a violin to her chin.");
        expect(docs[7]!["query"]).toBe("Ice fishing: A man drills a hole in the ice. Émile lowers a line");
        expect(Object.keys(docs[0]!)).toEqual(["ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split", "split_type", "label", "query", "choices", "gold"]);
        expect(docs[6]!["label"]).toBe("3");
        expect(docs[6]!["gold"]).toBe(3);
    });

    it.skipIf(taskDataDir === undefined)("piqa: Question/Answer prompt, solutions verbatim (first real document)", async () => {
        const docs = await loadTaskDocs(getTask("piqa"), { dataDir: sharedData });
        const [a, b] = buildTaskRequests(getTask("piqa"), docs.slice(1, 2));
        expect(a).toMatchObject({ context: "Question: dresser\nAnswer:", continuation: " replace drawer with bobby pin " });
        expect(b).toMatchObject({ continuation: " finish, woodgrain with  bobby pin " });
        expect(docs[0]!["label"]).toBe(0);
    });

    it("arc: numeric labels map answerKey to an index; 3- and 5-choice questions", async () => {
        const docs = await loadTaskDocs(getTask("arc_easy"), { dataDir: fixtures });
        const arc = getTask("arc_easy");
        expect(arc.docToTarget(docs[3]!)).toBe(0); // answerKey "1" of labels 1..4
        expect(arc.docToTarget(docs[7]!)).toBe(2); // answerKey "3"
        expect(arc.docToChoice!(docs[2]!)).toHaveLength(3);
        expect(arc.docToChoice!(docs[4]!)).toHaveLength(5);
        expect(Object.keys(docs[0]!)).toEqual(["id", "question", "choices", "answerKey"]);
        expect(docs[0]!["choices"]).toEqual({ text: ["a mirror", "the Sun", "the Moon", "a window"], label: ["A", "B", "C", "D"] });
        expect(buildTaskRequests(arc, docs.slice(0, 1))[1]).toMatchObject({ context: "Question: Which object is a source of light?\nAnswer:", continuation: " the Sun" });
    });

    it.skipIf(taskDataDir === undefined)("winogrande: one context per option, shared stripped continuation, gold from answer", async () => {
        const docs = await loadTaskDocs(getTask("winogrande"), { dataDir: sharedData });
        const task = getTask("winogrande");
        expect(isMultipleInput(task, docs)).toBe(true);
        const requests = buildTaskRequests(task, docs.slice(0, 1));
        expect(requests.map((r) => [r.context, r.continuation])).toEqual([
            ["Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases."],
            ["Sarah was a much better surgeon than Maria so Maria", " always got the easier cases."],
        ]);
        expect(Object.keys(docs[0]!)).toEqual(["sentence", "option1", "option2", "answer"]);
        // Second "_" and trailing spaces (bundled sample 7 and 5).
        const sample = await loadTaskDocs(task, { dataDir: fixtures });
        expect(buildTaskRequests(task, sample.slice(6, 7))[0]!.continuation).toBe(" forgot to return it on time_");
        expect(buildTaskRequests(task, sample.slice(4, 5))[0]!.continuation).toBe(" hid under the sofa.");
    });
});

describe("openbookqa (lm-eval main openbookqa.yaml)", () => {
    const task = getTask("openbookqa");

    it("context is question_stem as is, choices are choices.text after one space, gold = label index of answerKey.lstrip()", async () => {
        const docs = await loadTaskDocs(task, { dataDir: fixtures });
        expect(Object.keys(docs[0]!)).toEqual(["id", "question_stem", "choices", "answerKey"]);
        expect(buildTaskRequests(task, docs.slice(0, 1)).map((r) => [r.context, r.continuation])).toEqual([
            ["A kettle left on a hot stove will eventually", " freeze solid"],
            ["A kettle left on a hot stove will eventually", " boil the water inside it"],
            ["A kettle left on a hot stove will eventually", " turn into glass"],
            ["A kettle left on a hot stove will eventually", " grow heavier"],
        ]);
        expect(docs.map((d) => task.docToTarget(d))).toEqual([1, 2, 1, 0, 0, 1, 2, 3]);
        expect(docs[2]!["answerKey"]).toBe(" B"); // lstrip()ped before the lookup
        // A trailing space of the stem stays in the context (encode-pair moves it later); a leading space of a choice stays.
        expect(buildTaskRequests(task, docs.slice(4, 5))[0]!.context).toBe("A student drops a feather and a rock on the Moon. They land ");
        expect(buildTaskRequests(task, docs.slice(7, 8))[3]!.continuation).toBe("  predator");
    });

    it.skipIf(taskDataDir === undefined)("a real question (reconstructed test file, document 2; needs MAMBA_EVAL_DATA)", async () => {
        const docs = await loadTaskDocs(task, { dataDir: sharedData });
        const requests = buildTaskRequests(task, docs.slice(2, 3));
        expect(requests.map((r) => [r.context, r.continuation])).toEqual([
            ["Predators eat", " lions"], ["Predators eat", " humans"], ["Predators eat", " bunnies"], ["Predators eat", " grass"],
        ]);
        expect(task.docToTarget(docs[2]!)).toBe(2);
    });

    it("an answerKey that is not a label, or a document without choices, fails with one line", () => {
        const doc: Doc = { id: "x-1", question_stem: "q", choices: { text: ["a", "b"], label: ["A", "B"] }, answerKey: "E" };
        expect(() => task.docToTarget(doc)).toThrow('openbookqa: answerKey "E" of document "x-1" is not one of its choice labels ["A","B"]');
        expect(() => task.docToChoice!({ id: "x-2", question_stem: "q", answerKey: "A" })).toThrow('openbookqa: document field "choices" must be an object, got nothing (field missing)');
    });

    it("acc_norm divides by the choice's code points", () => {
        const doc: Doc = { id: "x", question_stem: "q", choices: { text: ["ab", "−5 °C"], label: ["A", "B"] }, answerKey: "B" };
        // a: -2/2 = -1; b: -4.5/5 = -0.9 → acc_norm picks b, acc picks a.
        expect(processResults(task, doc, [{ logprob: -2, isGreedy: false }, { logprob: -4.5, isGreedy: false }], false)).toEqual({ acc: 0, acc_norm: 1 });
    });
});

describe("--limit", () => {
    it("takes a count or ceil(n * fraction)", () => {
        expect(docLimit(1172, null)).toBe(1172);
        expect(docLimit(1172, 10)).toBe(10);
        expect(docLimit(1172, 0.01)).toBe(12); // ceil(11.72)
        expect(docLimit(8, 100)).toBe(8);
        expect(() => docLimit(8, -1)).toThrow("--limit");
    });
});

describe("per-document metrics", () => {
    const ll = (logprob: number, isGreedy = false) => ({ logprob, isGreedy });

    it("acc is the argmax, acc_norm divides by code points (not UTF-16 units or bytes)", () => {
        const arc = getTask("arc_easy");
        const doc: Doc = { id: "x", question: "q", choices: { text: ["ab", "😀😀😀"], label: ["A", "B"] }, answerKey: "B" };
        // ll/len: a: -2/2 = -1; b: -2.4/3 = -0.8 → acc_norm picks b; with UTF-16 length 6 it would pick a.
        expect(processResults(arc, doc, [ll(-2), ll(-2.4)], false)).toEqual({ acc: 0, acc_norm: 1 });
    });

    it("ties go to the first index, as numpy.argmax", () => {
        const piqa = getTask("piqa");
        const doc: Doc = { goal: "g", sol1: "xx", sol2: "yy", label: 1 };
        expect(processResults(piqa, doc, [ll(-3), ll(-3)], false)).toEqual({ acc: 0, acc_norm: 0 });
    });

    it("winogrande gold comes from doc_to_text; lambada gives perplexity = ll and acc = is_greedy", () => {
        const wino = getTask("winogrande");
        const doc: Doc = { sentence: "A _ b", option1: "x", option2: "y", answer: "2" };
        expect(processResults(wino, doc, [ll(-5), ll(-4)], true)).toEqual({ acc: 1 });
        const lambada = getTask("lambada_openai");
        expect(processResults(lambada, { text: "a b" }, [ll(-21.84375, true)], false)).toEqual({ perplexity: -21.84375, acc: 1 });
    });
});
