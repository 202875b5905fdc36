/**
 * A strict little XML well-formedness check for tests (no XML library is a dependency): balanced and
 * properly nested tags, quoted attributes without duplicates, known entities only, no stray '<' or '&'.
 * Returns the element names in document order, or throws with the offset of the first problem.
 */
export function checkWellFormedXml(xml: string): string[] {
    const elements: string[] = [];
    const stack: string[] = [];
    let i = 0;
    let sawRoot = false;
    const fail = (what: string): never => {
        throw new Error(`not well-formed XML at offset ${i}: ${what}`);
    };
    const checkText = (text: string) => {
        if (text.includes("<")) fail("'<' in text");
        for (const m of text.matchAll(/&([^;\s]*);?/g)) {
            if (!/^(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+)$/.test(m[1] ?? "") || !m[0].endsWith(";")) fail(`bad entity ${m[0]}`);
        }
    };
    if (xml.startsWith("<?xml")) {
        const end = xml.indexOf("?>");
        if (end < 0) fail("unterminated declaration");
        i = end + 2;
    }
    while (i < xml.length) {
        const lt = xml.indexOf("<", i);
        const text = xml.slice(i, lt < 0 ? xml.length : lt);
        if (stack.length === 0 && text.trim() !== "") fail("text outside the root element");
        checkText(text);
        if (lt < 0) break;
        i = lt;
        const gt = xml.indexOf(">", i);
        if (gt < 0) fail("unterminated tag");
        const tag = xml.slice(i + 1, gt);
        if (tag.startsWith("/")) {
            const name = tag.slice(1).trim();
            if (stack.pop() !== name) fail(`closing </${name}> does not match`);
        } else {
            const selfClosing = tag.endsWith("/");
            const body = selfClosing ? tag.slice(0, -1) : tag;
            const nameMatch = /^([A-Za-z_][\w.:-]*)/.exec(body);
            if (nameMatch === null) fail("bad tag name");
            const name = nameMatch![1]!;
            if (stack.length === 0) {
                if (sawRoot) fail("second root element");
                sawRoot = true;
            }
            let rest = body.slice(name.length);
            const seen = new Set<string>();
            const attr = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*"([^"]*)"/;
            for (let m = attr.exec(rest); m !== null; m = attr.exec(rest)) {
                if (seen.has(m[1]!)) fail(`duplicate attribute ${m[1]}`);
                seen.add(m[1]!);
                checkText(m[2]!);
                rest = rest.slice(m[0].length);
            }
            if (rest.trim() !== "") fail(`unparsable attributes in <${name}>: ${rest.trim().slice(0, 30)}`);
            elements.push(name);
            if (!selfClosing) stack.push(name);
        }
        i = gt + 1;
    }
    if (stack.length > 0) fail(`unclosed <${stack.at(-1)}>`);
    if (!sawRoot) fail("no root element");
    return elements;
}
