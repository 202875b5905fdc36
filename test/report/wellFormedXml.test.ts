import { describe, expect, it } from "vitest";
import { checkWellFormedXml } from "./wellFormedXml.js";

describe("the test's XML checker itself", () => {
    it("accepts a small well-formed document and lists its elements", () => {
        expect(checkWellFormedXml('<?xml version="1.0"?>\n<svg a="1"><g><rect x="0"/><text>a &amp; b</text></g></svg>\n'))
            .toEqual(["svg", "g", "rect", "text"]);
    });
    it.each([
        ["<svg><g></svg>", "does not match"],
        ["<svg><text>a & b</text></svg>", "bad entity"],
        ['<svg a="1" a="2"/>', "duplicate attribute"],
        ["<svg a=1/>", "unparsable attributes"],
        ["<svg></svg><svg></svg>", "second root"],
        ["<svg>", "unclosed"],
    ])("rejects %s", (xml, why) => {
        expect(() => checkWellFormedXml(xml)).toThrow(why);
    });
});
