// Verify it yourself: the buyer's browser checks this page's proofs without the service's help.
//
// The page embeds <script type="application/json" id="proof-data"> holding
// {"verification": <GET /v1/verify's answer>, "chain": {"rpc_url", "chain_id", "ledger"}} and
// a <section id="verify-yourself">. On its button, for each custody event shown, this script
// recomputes the event's EIP-712 digest from its fields (contracts_abi/eip712.py, CustodyEvent),
// recovers the signer and compares it with the event's device, recomputes the salted leaf
// (contracts_abi/merkle.py), folds the Merkle proof up to a root, and asks the chain's JSON-RPC
// node itself whether that root is anchored (CustodyLedger.anchoredAt) and whom the device is
// registered to (deviceOrganization). Then it checks the service's signature over the verdict
// (TagVerdict) and that its signer holds OPERATOR_ROLE on the ledger (hasRole).
// The crypto is the vendored, pinned @noble bundle (vendor/noble.js), loaded only when asked.
(() => {
  "use strict";

  // Every word shown comes from the page: the section's data-strings attribute holds a JSON
  // object of templates ({name} is filled in), `steps` and `verdicts` (business steps and
  // verdicts in words): provenance_api/web/strings.py's "verify_yourself." sentences and its
  // steps, the one place to translate. Without them the script leaves the page as it is.

  const OPERATOR_ROLE_NAME = "OPERATOR_ROLE";
  const CUSTODY_EVENT_TYPE =
    "CustodyEvent(bytes16 eventId,Item item,string bizStep,string disposition," +
    "string readPoint,address fromParty,address toParty,uint64 eventTime," +
    "int16 eventTimeZoneOffset,bytes32 tagEvidence,address device)Item(string gtin,string serial)";
  const ITEM_TYPE = "Item(string gtin,string serial)";
  const TAG_VERDICT_TYPE =
    "TagVerdict(string gtin,string serial,string tagKind,string verdict,bytes32 reasonsHash," +
    "uint64 checkedAt)";
  const REASON_TYPE = "Reason(string code,string message)";
  const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
  const ZERO = "0x" + "00".repeat(20);
  const VENDOR = new URL("vendor/noble.js", document.currentScript.src).href;

  let noble; // {keccak_256, secp256k1}, once loaded

  // --- bytes --------------------------------------------------------------------------------

  const utf8 = (text) => new TextEncoder().encode(text);
  const hex = (bytes) => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  function bytes(text, length) {
    const digits = String(text).replace(/^0x/i, "");
    if (digits.length % 2 || /[^0-9a-f]/i.test(digits)) throw new Error(`not hex: ${text}`);
    if (length !== undefined && digits.length !== 2 * length) {
      throw new Error(`expected ${length} bytes: ${text}`);
    }
    return Uint8Array.from(digits.match(/../g) || [], (pair) => parseInt(pair, 16));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  const keccak = (data) => noble.keccak_256(data);
  const hashText = (text) => keccak(utf8(text));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  function uint(value) {
    // Two's complement in 256 bits: abi.encode sign-extends an int16.
    let n = BigInt(value) & ((1n << 256n) - 1n);
    const word = new Uint8Array(32);
    for (let i = 31; i >= 0; i--, n >>= 8n) word[i] = Number(n & 0xffn);
    return word;
  }

  const addressWord = (address) => concat(new Uint8Array(12), bytes(address, 20));
  const typedDigest = (domain, struct) => keccak(concat(Uint8Array.of(0x19, 0x01), domain, struct));
  const seconds = (iso) => Math.floor(Date.parse(iso.replace(/\.\d+/, "")) / 1000);

  // --- EIP-712, as contracts_abi/eip712.py computes it ---------------------------------------

  function custodyDigest(step, gtin, serial) {
    const domain = keccak(
      concat(
        hashText("EIP712Domain(string name,string version)"),
        hashText("Provenance Custody"),
        hashText("1"),
      ),
    );
    const id = bytes(step.event_id.replace(/^urn:uuid:/i, "").replace(/[-{}]/g, ""), 16);
    const item = keccak(concat(hashText(ITEM_TYPE), hashText(gtin), hashText(serial)));
    const struct = concat(
      hashText(CUSTODY_EVENT_TYPE),
      id,
      new Uint8Array(16), // bytes16 is left-aligned in its word
      item,
      hashText(step.biz_step),
      hashText(step.disposition),
      hashText(step.read_point),
      addressWord(step.from_party || ZERO),
      addressWord(step.to_party || ZERO),
      uint(seconds(step.event_time)),
      uint(step.time_zone_offset),
      bytes(step.tag_evidence, 32),
      addressWord(step.device),
    );
    return typedDigest(domain, keccak(struct));
  }

  function reasonsHash(reasons) {
    const typehash = hashText(REASON_TYPE);
    const each = reasons.map((r) => keccak(concat(typehash, hashText(r.code), hashText(r.message))));
    return keccak(concat(...each));
  }

  function verdictDigest(shown, chainId, ledger) {
    const domain = keccak(
      concat(
        hashText(
          "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        ),
        hashText("Provenance Verdicts"),
        hashText("1"),
        uint(chainId),
        addressWord(ledger),
      ),
    );
    const struct = concat(
      hashText(TAG_VERDICT_TYPE),
      hashText(shown.gtin),
      hashText(shown.serial),
      hashText(shown.tag_kind || ""),
      hashText(shown.verdict),
      reasonsHash(shown.reasons || []),
      uint(seconds(shown.checked_at)),
    );
    return typedDigest(domain, keccak(struct));
  }

  function recover(digest, signature) {
    // 65 bytes r || s || v with v 27 or 28 and a low s, as the service and ecrecover take it.
    const sig = bytes(signature, 65);
    const r = BigInt(hex(sig.slice(0, 32)));
    const s = BigInt(hex(sig.slice(32, 64)));
    if (sig[64] !== 27 && sig[64] !== 28) throw new Error("bad recovery id");
    if (s === 0n || s > HALF_N) throw new Error("s out of range");
    const point = new noble.secp256k1.Signature(r, s, sig[64] - 27).recoverPublicKey(digest);
    return hex(keccak(point.toBytes(false).slice(1)).slice(12));
  }

  function leafRoot(digest, salt, proof) {
    // OpenZeppelin StandardMerkleTree, leaf ["bytes32", "bytes32"]: keccak(keccak(abi.encode)).
    let node = keccak(keccak(concat(digest, bytes(salt, 32))));
    for (const sibling of proof) {
      const other = bytes(sibling, 32);
      const less = node.findIndex((b, i) => b !== other[i]);
      node = keccak(less < 0 || node[less] < other[less] ? concat(node, other) : concat(other, node));
    }
    return node;
  }

  // --- the chain, read directly ---------------------------------------------------------------

  function makeNode(url, ledger) {
    let id = 0;
    const calls = new Map();
    async function rpc(method, params) {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
        credentials: "omit",
        referrerPolicy: "no-referrer", // the page's URL holds the tag's parameters
      });
      const body = await response.json();
      if (body.error) throw new Error(body.error.message || "node error");
      return body.result;
    }
    function call(signature, ...words) {
      const data = hex(concat(hashText(signature).slice(0, 4), ...words));
      if (!calls.has(data)) calls.set(data, rpc("eth_call", [{ to: ledger, data }, "latest"]));
      return calls.get(data).then((result) => bytes(result));
    }
    const number = (word) => BigInt(hex(word.length ? word : Uint8Array.of(0)));
    return {
      chainId: async () => Number(BigInt(await rpc("eth_chainId", []))),
      anchoredAt: async (root) => number(await call("anchoredAt(bytes32)", root)),
      organization: async (device) =>
        hex((await call("deviceOrganization(address)", addressWord(device))).slice(12, 32)),
      active: async (device) =>
        number(await call("isDeviceActive(address)", addressWord(device))) !== 0n,
      isOperator: async (account) =>
        number(
          await call("hasRole(bytes32,address)", hashText(OPERATOR_ROLE_NAME), addressWord(account)),
        ) !== 0n,
    };
  }

  // A moment as the page's timeline shows it: in UTC (the page's own times are), in its language.
  const moment = (date) =>
    date.toLocaleString(document.documentElement.lang || undefined, {
      year: "numeric",
      month: "long",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone: "UTC",
    }) + " UTC";

  // --- the checks -----------------------------------------------------------------------------

  // A check: {key, result: "pass" | "fail" | "service", text}. "service" rests on our word.
  const check = (key, ok, text) => ({ key, result: ok ? "pass" : "fail", text });
  const lower = (address) => String(address).toLowerCase();
  const short = (value) => `${value.slice(0, 8)}…${value.slice(-4)}`;

  async function checkStep(step, shown, node, say) {
    if (step.device_signed === false) return checkCaptured(step, node, say);
    const checks = [];
    const device = lower(step.device);
    const names = { device: short(step.device), party: step.party_name || short(step.party) };
    const digest = custodyDigest(step, shown.gtin, shown.serial);
    const matches = hex(digest) === lower(step.digest);
    checks.push(check("digest", matches, say(matches ? "eventOk" : "eventBad", names)));
    let signer = null;
    try {
      signer = recover(digest, step.signature);
    } catch (_) {
      /* a malformed signature is a failed check */
    }
    const commissioning = step.biz_step === "commissioning";
    const signed = signer === device;
    if (commissioning) {
      // The supplier signs its items' registration with its own key, which is no reader's.
      const supplier = signed && device === lower((shown.supplier || {}).address);
      checks.push(check("signature", supplier, say(supplier ? "supplierSigned" : "signedBad", names)));
      checks.push({ key: "supplier", result: "service", text: say("supplierKey", names) });
    } else {
      checks.push(check("signature", signed, say(signed ? "signedBy" : "signedBad", names)));
      const [organization, active] = await Promise.all([node.organization(device), node.active(device)]);
      const registered = organization === lower(step.party);
      const text = !registered ? "readerBad" : active ? "readerOk" : "readerRevoked";
      checks.push(check("device", registered, say(text, names)));
      checks.push({ key: "tag", result: "service", text: say("tagRead", names) });
    }
    return checks.concat(await checkAnchoring(step, digest, node, say, names));
  }

  // An event captured over EPCIS from another system: no reader signed it; its digest is the
  // SHA-256 inside its GS1 event hash ID, which only the whole EPCIS event gives back.
  async function checkCaptured(step, node, say) {
    const names = { party: step.party_name || short(step.party) };
    const checks = [{ key: "signature", result: "service", text: say("captured", names) }];
    return checks.concat(await checkAnchoring(step, bytes(step.digest, 32), node, say, names));
  }

  async function checkAnchoring(step, digest, node, say, names) {
    const checks = [];
    if (!step.root || !step.proof) {
      checks.push({ key: "anchor", result: "pending", text: say("pending", names) });
      return checks;
    }
    const root = leafRoot(digest, step.salt, step.proof);
    const rootNames = { root: short(hex(root)) };
    const leads = hex(root) === lower(step.root);
    checks.push(check("proof", leads, say(leads ? "proofOk" : "proofBad", { root: short(step.root) })));
    const at = await node.anchoredAt(root);
    const date = moment(new Date(Number(at) * 1000));
    checks.push(check("anchor", at !== 0n, say(at ? "anchored" : "notAnchored", { ...rootNames, date })));
    return checks;
  }

  async function checkVerdict(shown, chain, node, say, verdictName) {
    const att = shown.attestation;
    // Unsigned (no ledger deployed yet) is no forgery, but nothing a browser can check either.
    if (!att) return [{ key: "attestation", result: "pending", text: say("unsigned", {}) }];
    const names = { verdict: verdictName, signer: short(att.signer) };
    let signer = null;
    try {
      signer = recover(verdictDigest(shown, chain.chain_id, chain.ledger), att.signature);
    } catch (_) {
      /* a malformed signature is a failed check */
    }
    // The signed fields the attestation repeats must be those shown, on this chain and ledger.
    const repeats =
      att.verdict === shown.verdict &&
      att.gtin === shown.gtin &&
      att.serial === shown.serial &&
      att.tag_kind === (shown.tag_kind || "") &&
      att.checked_at === seconds(shown.checked_at) &&
      lower(att.reasons_hash) === hex(reasonsHash(shown.reasons || [])) &&
      Number(att.chain_id) === Number(chain.chain_id) &&
      lower(att.ledger) === lower(chain.ledger);
    const signed = repeats && signer === lower(att.signer);
    const operator = await node.isOperator(att.signer);
    const tag = (shown.tag_kind || "").startsWith("ntag424") ? "tagCheck424" : "tagCheck";
    return [
      check("attestation", signed, say(signed ? "attested" : "attestBad", names)),
      check("operator", operator, say(operator ? "operator" : "notOperator", names)),
      { key: "tag", result: "service", text: say(tag, names) },
    ];
  }

  // --- rendering ------------------------------------------------------------------------------

  function element(tag, attributes, ...children) {
    const made = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) made.setAttribute(name, value);
    made.append(...children);
    return made;
  }

  // A result is shown in words (and a mark), never by its colour alone.
  const MARKS = { pass: "✓", fail: "✗", service: "•", pending: "…" };
  const WHO = { pass: "byBrowser", fail: "byBrowser", service: "byService", pending: "notChecked" };

  function checkList(checks, say) {
    return element(
      "ul",
      { class: "proof-checks" },
      ...checks.map((c) =>
        element(
          "li",
          { "data-check": c.key, "data-result": c.result },
          element(
            "strong",
            { class: "proof-result-word" },
            element("span", { "aria-hidden": "true" }, MARKS[c.result] + " "),
            say(`result.${c.result}`, {}),
          ),
          " ",
          c.text,
          " ",
          element("small", {}, `(${say(WHO[c.result], {})})`),
        ),
      ),
    );
  }

  const worst = (checks) =>
    checks.some((c) => c.result === "fail")
      ? "fail"
      : checks.some((c) => c.result === "pending")
        ? "pending"
        : "pass";

  async function run(data, text, say, output) {
    const shown = data.verification || {};
    const chain = data.chain || {};
    // A code that is not genuine is not the item whose record this is (as the page itself
    // shows no journey for it): its proofs would only lend the copy credibility.
    const steps = shown.verdict === "counterfeit" ? [] : shown.history || [];
    output.replaceChildren(element("p", {}, say("running", {})));
    if (!chain.rpc_url || !chain.ledger) return say("noNode", {});
    if (!steps.length && !shown.attestation) return say("nothing", {});
    noble = noble || (await import(VENDOR));
    const node = makeNode(chain.rpc_url, chain.ledger);
    let got;
    try {
      got = await node.chainId();
    } catch (error) {
      return say("nodeDown", { error: error.message });
    }
    if (got !== Number(chain.chain_id)) return say("wrongChain", { got, want: chain.chain_id });
    const verdictName = (text.verdicts || {})[shown.verdict] || shown.verdict;
    const guard = (work) => work.catch((error) => [check("error", false, say("error", { error: error.message }))]);
    const [verdict, ...events] = await Promise.all([
      guard(checkVerdict(shown, chain, node, say, verdictName)),
      ...steps.map((step) => guard(checkStep(step, shown, node, say))),
    ]);
    const all = [...verdict, ...events.flat()];
    const overall = worst(all);
    let summary = { pass: "pass", pending: "partial", fail: "fail" }[overall];
    // "Passed" under a warning must not read as "genuine": say what passing means there.
    if (summary === "pass" && shown.verdict !== "authentic") summary = "passOther";
    output.replaceChildren(
      element(
        "p",
        { "data-proof-overall": "", "data-result": overall, "data-verdict": shown.verdict || "" },
        say(summary, { verdict: verdictName }),
      ),
      element("h3", {}, say("verdictTitle", {})),
      checkList(verdict, say),
      ...(steps.length ? [element("h3", {}, say("stepsTitle", {}))] : []),
      element(
        "ol",
        { class: "proof-steps" },
        ...steps.map((step, i) =>
          element(
            "li",
            { "data-event": step.event_id, "data-result": worst(events[i]) },
            [
              (text.steps || {})[step.biz_step] || step.biz_step,
              step.party_name || step.party,
              moment(new Date(step.event_time)),
            ].join(" · "),
            checkList(events[i], say),
          ),
        ),
      ),
      element("p", {}, say("ledger", { ledger: chain.ledger, chain: chain.chain_id })),
    );
    return null;
  }

  function start() {
    const section = document.getElementById("verify-yourself");
    const source = document.getElementById("proof-data");
    if (!section || !source) return;
    let text;
    try {
      text = JSON.parse(section.dataset.strings || "null");
    } catch (_) {
      text = null;
    }
    if (!text || !text.button) return; // no words to say it with: the page's text stands
    const say = (key, names) =>
      (text[key] || key).replace(/\{(\w+)\}/g, (_, name) => String((names || {})[name] ?? ""));
    const output = element("div", { class: "proof-result", "aria-live": "polite" });
    const button = element("button", { type: "button", class: "proof-button" }, say("button", {}));
    // The page's template names the section; a page without a heading gets one.
    if (!section.querySelector("h2")) section.append(element("h2", {}, say("heading", {})));
    section.append(element("p", {}, say("intro", {})), button, output);
    button.addEventListener("click", async () => {
      button.disabled = true;
      let problem;
      try {
        problem = await run(JSON.parse(source.textContent), text, say, output);
      } catch (error) {
        problem = say("error", { error: error.message });
      }
      if (problem) {
        output.replaceChildren(
          // Nothing could be checked: neither a pass nor evidence of a forgery.
          element("p", { "data-proof-overall": "", "data-result": "unavailable" }, problem),
        );
      }
      button.disabled = false;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
