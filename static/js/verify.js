/*
 * The certificate checks itself in the visitor's browser: on the certificate page, and in a saved copy of it
 * opened from disk without a network. It reads the certificate, the published key set and the witness keys
 * from the page's JSON blocks (#certificate-data, #key-set-data, #witness-keys-data), runs every check that
 * needs no entries list (docs/fairness.md, the checks that need no entries) and lists them in
 * #browser-check. SHA-256 and HMAC come from WebCrypto when the page has it (file:// and plain http pages may
 * not), else from the vendored noble bundle (window.CleackCrypto), which also gives Ed25519 and BLS.
 */
(function () {
  "use strict";

  var V1 = "cleack-draw-v1";
  var V2 = "cleack-draw-v2";
  var WORD_SPACE = BigInt(1) << BigInt(64);
  var MAX_INT63 = (BigInt(1) << BigInt(63)) - BigInt(1);
  var BLS_SCHEME = "bls-unchained-g1-rfc9380";
  // Public chains whose parameters are pinned here: a certificate naming one cannot bring its own key.
  var KNOWN_CHAINS = {
    "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971": {
      source: "drand:quicknet",
      scheme: BLS_SCHEME,
      genesis_time: 1692803367,
      period: 3,
      public_key:
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c" +
        "921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
    },
  };
  var EXCLUSION_REASONS = [
    "duplicate",
    "blacklisted",
    "keyword_missing",
    "too_few_mentions",
    "too_few_followers",
    "suspicious",
    "business_account",
    "not_liked",
    "not_following",
  ];
  var ENTRY_FIELDS = ["platform", "platform_user_id", "username", "entry_id"];
  var RECORD_COMMON = ["log", "seq", "kind", "draw_id", "at", "key_id", "record_hash", "signature"];
  var RECORD_MEMBERS = {
    opened: ["draw", "config", "blacklist", "scheduled_at", "subjects", "beacon"],
    sealed: ["opened", "counts", "merkle_root", "collected_root", "beacon"],
  };
  var LOG_MEMBERS = ["origin", "head_before_seal", "following", "checkpoint", "cosignatures", "witnesses"];
  var BEACON_MEMBERS = [
    "source",
    "chain_hash",
    "scheme",
    "public_key",
    "genesis_time",
    "period",
    "round",
    "signature",
    "randomness",
  ];
  var NOTE_DASH = "\u2014 ";
  var ED25519_NOTE = 0x01;
  var COSIGNATURE_V1 = 0x04;

  function Problem(message) {
    this.message = message;
  }

  // JSON, read strictly: a number that is not an integer is kept as such (it has no canonical form), and
  // duplicate keys are refused, so that what is hashed here is what the server hashed.
  function NonInteger(text) {
    this.text = text;
  }

  function parseJson(text) {
    var at = 0;

    function fail(what) {
      throw new Problem("the JSON cannot be read (" + what + " at character " + at + ")");
    }
    function space() {
      while (at < text.length && " \t\n\r".indexOf(text[at]) >= 0) at += 1;
    }
    function value() {
      space();
      var c = text[at];
      if (c === "{") return object();
      if (c === "[") return array();
      if (c === '"') return string();
      if (text.startsWith("true", at)) return literal("true", true);
      if (text.startsWith("false", at)) return literal("false", false);
      if (text.startsWith("null", at)) return literal("null", null);
      return number();
    }
    function literal(word, result) {
      at += word.length;
      return result;
    }
    function number() {
      var match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 400));
      if (!match || !match[0] || match[0] === "-") fail("unexpected character");
      at += match[0].length;
      if (match[2] || match[3]) return new NonInteger(match[0]);
      var result = Number(match[0]);
      return Number.isSafeInteger(result) ? result : new NonInteger(match[0]);
    }
    function string() {
      at += 1;
      var out = "";
      for (;;) {
        var end = at;
        while (end < text.length && text[end] !== '"' && text[end] !== "\\" && text.charCodeAt(end) >= 0x20) end += 1;
        out += text.slice(at, end);
        at = end;
        if (at >= text.length || text.charCodeAt(at) < 0x20) fail("unterminated string");
        if (text[at] === '"') {
          at += 1;
          return out;
        }
        var escape = text[at + 1];
        var simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[escape];
        if (simple !== undefined) {
          out += simple;
          at += 2;
        } else if (escape === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) {
          out += String.fromCharCode(parseInt(text.slice(at + 2, at + 6), 16));
          at += 6;
        } else {
          fail("bad escape");
        }
      }
    }
    function array() {
      at += 1;
      var out = [];
      space();
      if (text[at] === "]") {
        at += 1;
        return out;
      }
      for (;;) {
        out.push(value());
        space();
        if (text[at] === ",") {
          at += 1;
        } else if (text[at] === "]") {
          at += 1;
          return out;
        } else {
          fail("expected , or ]");
        }
      }
    }
    function object() {
      at += 1;
      var out = Object.create(null);
      space();
      if (text[at] === "}") {
        at += 1;
        return out;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a key");
        var key = string();
        if (has(out, key)) fail("repeated key " + JSON.stringify(key));
        space();
        if (text[at] !== ":") fail("expected :");
        at += 1;
        out[key] = value();
        space();
        if (text[at] === ",") {
          at += 1;
        } else if (text[at] === "}") {
          at += 1;
          return out;
        } else {
          fail("expected , or }");
        }
      }
    }

    var result = value();
    space();
    if (at !== text.length) fail("trailing text");
    return result;
  }

  function has(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof NonInteger);
  }

  function isInt(value) {
    return typeof value === "number" && Number.isSafeInteger(value);
  }

  function isCount(value) {
    return isInt(value) && value >= 0;
  }

  function isHex(value, digits) {
    return typeof value === "string" && value.length === digits && /^[0-9a-f]*$/.test(value);
  }

  function isLowerHex(value) {
    return typeof value === "string" && value.length % 2 === 0 && /^[0-9a-f]*$/.test(value);
  }

  function isStringList(value) {
    return (
      Array.isArray(value) &&
      value.every(function (item) {
        return typeof item === "string";
      })
    );
  }

  function sameMembers(object, names) {
    var keys = Object.keys(object);
    return (
      keys.length === names.length &&
      names.every(function (name) {
        return has(object, name);
      })
    );
  }

  function isUuid(value) {
    return typeof value === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
  }

  // An RFC 3339 time with an offset, as microseconds since the epoch; null when it is not one.
  function parseTime(value) {
    if (typeof value !== "string") return null;
    var match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/.exec(value);
    if (!match) return null;
    var parts = match.slice(1, 7).map(Number);
    var day = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5]));
    if (
      day.getUTCFullYear() !== parts[0] ||
      day.getUTCMonth() !== parts[1] - 1 ||
      day.getUTCDate() !== parts[2] ||
      parts[3] > 23 ||
      parts[4] > 59 ||
      parts[5] > 59
    ) {
      return null;
    }
    var offset = 0;
    if (match[8] !== "Z") {
      var sign = match[8][0] === "-" ? -1 : 1;
      offset = sign * (Number(match[8].slice(1, 3)) * 60 + Number(match[8].slice(4, 6)));
    }
    var micros = match[7] ? Number((match[7] + "00000").slice(0, 6)) : 0;
    return (day.getTime() - offset * 60000) * 1000 + micros;
  }

  function isTime(value) {
    return parseTime(value) !== null;
  }

  // Canonical JSON (docs/fairness.md §2): sorted keys by code point, minimal escapes, integers only, UTF-8.
  var ESCAPES = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

  function compareCodePoints(a, b) {
    var i = 0;
    var j = 0;
    while (i < a.length && j < b.length) {
      var x = a.codePointAt(i);
      var y = b.codePointAt(j);
      if (x !== y) return x < y ? -1 : 1;
      i += x > 0xffff ? 2 : 1;
      j += y > 0xffff ? 2 : 1;
    }
    if (i < a.length) return 1;
    return j < b.length ? -1 : 0;
  }

  function canonicalString(text) {
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
      throw new Problem("a string holds an unpaired surrogate");
    }
    return (
      '"' +
      text.replace(/["\\\u0000-\u001f]/g, function (c) {
        return ESCAPES[c] || "\\u00" + (c.charCodeAt(0) < 16 ? "0" : "") + c.charCodeAt(0).toString(16);
      }) +
      '"'
    );
  }

  function canonicalText(value) {
    if (value === null) return "null";
    if (value === true) return "true";
    if (value === false) return "false";
    if (value instanceof NonInteger)
      throw new Problem("the number " + value.text + " is not an integer within ±(2^53 − 1)");
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value))
        throw new Problem("the number " + value + " is not an integer within ±(2^53 − 1)");
      return String(value);
    }
    if (typeof value === "string") return canonicalString(value);
    if (Array.isArray(value)) return "[" + value.map(canonicalText).join(",") + "]";
    if (typeof value === "object") {
      return (
        "{" +
        Object.keys(value)
          .sort(compareCodePoints)
          .map(function (key) {
            return canonicalString(key) + ":" + canonicalText(value[key]);
          })
          .join(",") +
        "}"
      );
    }
    throw new Problem("a value is not JSON");
  }

  function canonicalJson(value) {
    return utf8(canonicalText(value));
  }

  // Equality of two JSON values as `cleack verify` (Python's ==) has it: 1, 1.0 and true are equal there.
  function sameJson(a, b) {
    var numeric = function (value) {
      if (value instanceof NonInteger) return Number(value.text);
      if (typeof value === "boolean") return value ? 1 : 0;
      return typeof value === "number" ? value : null;
    };
    if (numeric(a) !== null || numeric(b) !== null) return numeric(a) === numeric(b);
    if (Array.isArray(a) || Array.isArray(b)) {
      return (
        Array.isArray(a) &&
        Array.isArray(b) &&
        a.length === b.length &&
        a.every(function (item, i) {
          return sameJson(item, b[i]);
        })
      );
    }
    if (isObject(a) && isObject(b)) {
      var keys = Object.keys(a);
      return (
        sameMembers(b, keys) &&
        keys.every(function (key) {
          return sameJson(a[key], b[key]);
        })
      );
    }
    return a === b;
  }

  function without(object, names) {
    var copy = Object.create(null);
    Object.keys(object).forEach(function (key) {
      if (names.indexOf(key) < 0) copy[key] = object[key];
    });
    return copy;
  }

  // Bytes

  var encoder = new TextEncoder();

  function utf8(text) {
    return encoder.encode(text);
  }

  function hexToBytes(hex) {
    var bytes = new Uint8Array(hex.length / 2);
    for (var i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return bytes;
  }

  function toHex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i += 1) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  function concat() {
    var parts = Array.prototype.slice.call(arguments);
    var total = parts.reduce(function (sum, part) {
      return sum + part.length;
    }, 0);
    var out = new Uint8Array(total);
    var offset = 0;
    parts.forEach(function (part) {
      out.set(part, offset);
      offset += part.length;
    });
    return out;
  }

  function equalBytes(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
    return true;
  }

  function uint64be(value) {
    var out = new Uint8Array(8);
    var big = BigInt(value);
    for (var i = 7; i >= 0; i -= 1) {
      out[i] = Number(big & BigInt(255));
      big >>= BigInt(8);
    }
    return out;
  }

  function readUint64(bytes, offset) {
    var value = BigInt(0);
    for (var i = 0; i < 8; i += 1) value = (value << BigInt(8)) | BigInt(bytes[offset + i]);
    return value;
  }

  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  var B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  function encodeBase64(bytes, alphabet, pad) {
    var out = "";
    for (var i = 0; i < bytes.length; i += 3) {
      var n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      var chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
      for (var j = 0; j < chars; j += 1) out += alphabet[(n >> (18 - 6 * j)) & 63];
      if (pad) out += "==".slice(0, 4 - chars);
    }
    return out;
  }

  // Canonical only: decoding then encoding again must give the same text (no stray padding, no spare bits).
  function decodeBase64(text, alphabet, pad, what) {
    if (typeof text !== "string" || (pad && text.length % 4 !== 0) || (!pad && text.length % 4 === 1)) {
      throw new Problem(what + " is not canonical base64" + (pad ? "" : "url"));
    }
    var body = pad ? text.replace(/={1,2}$/, "") : text;
    var bytes = [];
    var bits = 0;
    var buffer = 0;
    for (var i = 0; i < body.length; i += 1) {
      var value = alphabet.indexOf(body[i]);
      if (value < 0) throw new Problem(what + " is not canonical base64" + (pad ? "" : "url"));
      buffer = (buffer << 6) | value;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((buffer >> bits) & 255);
        buffer &= (1 << bits) - 1;
      }
    }
    var result = new Uint8Array(bytes);
    if (encodeBase64(result, alphabet, pad) !== text) {
      throw new Problem(what + " is not canonical base64" + (pad ? "" : "url") + " (padding or spare bits)");
    }
    return result;
  }

  function base64url(text, what) {
    return decodeBase64(text, B64URL, false, what);
  }

  function base64(text, what) {
    return decodeBase64(text, B64, true, what);
  }

  // Hashes and signatures: WebCrypto for SHA-256 and HMAC where the page may use it, noble otherwise.

  // Set when the checks start (the bundle's script runs before this one).
  var noble = null;
  var subtle = null;
  try {
    if (window.isSecureContext && window.crypto && window.crypto.subtle) subtle = window.crypto.subtle;
  } catch (error) {
    subtle = null;
  }

  async function sha256(bytes) {
    if (subtle) return new Uint8Array(await subtle.digest("SHA-256", bytes));
    return noble.sha256(bytes);
  }

  async function hmacSigner(key) {
    if (subtle) {
      var imported = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      return async function (message) {
        return new Uint8Array(await subtle.sign("HMAC", imported, message));
      };
    }
    return async function (message) {
      return noble.hmacSha256(key, message);
    };
  }

  function ed25519Valid(signature, message, publicKey) {
    try {
      return signature.length === 64 && publicKey.length === 32 && noble.ed25519Verify(signature, message, publicKey);
    } catch (error) {
      return false;
    }
  }

  // The published key set (docs/fairness.md §10), by key_id; a Problem names what is wrong with it.
  async function readKeySet(document) {
    if (!isObject(document) || !Array.isArray(document.keys))
      throw new Problem('a key set is an object with a "keys" list');
    var keys = Object.create(null);
    for (var i = 0; i < document.keys.length; i += 1) {
      var record = document.keys[i];
      var where = "key " + (i + 1);
      if (!isObject(record) || record.algorithm !== "Ed25519") throw new Problem(where + " is not an Ed25519 key");
      if (typeof record.public_key !== "string") throw new Problem(where + ": public_key is missing");
      var raw = base64url(record.public_key, where + "'s public_key");
      var created = parseTime(record.created_at);
      var stillInService = record.retired_at === null || record.retired_at === undefined;
      var retired = stillInService ? null : parseTime(record.retired_at);
      if (raw.length !== 32) throw new Problem(where + ": an Ed25519 public key is 32 bytes");
      if (created === null || (!stillInService && retired === null)) {
        throw new Problem(where + ": created_at and retired_at must be RFC 3339 times");
      }
      var id = toHex(await sha256(raw)).slice(0, 16);
      if (record.key_id !== id)
        throw new Problem(where + ": key_id is not the first 16 hex digits of SHA-256 of the key");
      keys[id] = { id: id, raw: raw, created: created, retired: retired };
    }
    return keys;
  }

  // Why a signature over `digest` (hex text) by key `keyId` at time `at` does not hold; null when it does.
  function signatureProblem(keys, keyId, at, digest, signature) {
    var key = has(keys, keyId) ? keys[keyId] : null;
    if (key === null) return "key " + keyId + " is not in the key set";
    var moment = parseTime(at);
    if (moment < key.created || (key.retired !== null && moment > key.retired)) {
      return "key " + key.id + " was not in service at " + at;
    }
    var bytes;
    try {
      bytes = base64url(signature, "the signature");
    } catch (problem) {
      return problem.message;
    }
    return ed25519Valid(bytes, utf8(digest), key.raw) ? null : "the signature is not key " + key.id + "'s";
  }

  // Entries and leaves (docs/fairness.md)

  function encodeEntry(pick) {
    return canonicalJson(
      ENTRY_FIELDS.map(function (name) {
        return pick[name];
      }),
    );
  }

  async function leafV1(pick) {
    return sha256(concat(new Uint8Array([0]), encodeEntry(pick)));
  }

  async function leafV2(pick) {
    return sha256(concat(new Uint8Array([0]), hexToBytes(pick.salt), encodeEntry(pick)));
  }

  // The stream and the partial Fisher–Yates (docs/fairness.md §7–§8), 64-bit words as BigInt.
  async function selectIndices(seed, label, n, k) {
    var sign = await hmacSigner(seed);
    var words = [];
    var block = 0;
    async function nextWord() {
      if (!words.length) {
        var bytes = await sign(concat(utf8(label), uint64be(block)));
        block += 1;
        for (var offset = 0; offset < 32; offset += 8) words.push(readUint64(bytes, offset));
      }
      return words.shift();
    }
    var moved = new Map();
    var picked = [];
    for (var step = 0; step < Math.min(k, n); step += 1) {
      var bound = BigInt(n - step);
      var limit = WORD_SPACE - (WORD_SPACE % bound);
      var word;
      do {
        word = await nextWord();
      } while (word >= limit);
      var slot = step + Number(word % bound);
      var value = moved.has(slot) ? moved.get(slot) : slot;
      moved.set(slot, moved.has(step) ? moved.get(step) : step);
      picked.push(value);
    }
    return picked;
  }

  function selectionSizes(eligible, winnersCount, alternatesCount) {
    var winners = Math.min(winnersCount, eligible);
    return [winners, Math.min(alternatesCount, eligible - winners)];
  }

  function listed(values) {
    return "[" + values.join(", ") + "]";
  }

  async function checkSelection(report, cert, seed, label) {
    var eligible = cert.counts.eligible;
    var sizes = selectionSizes(eligible, cert.config.winners_count, cert.config.alternates_count);
    var indices = await selectIndices(seed, label, eligible, sizes[0] + sizes[1]);
    var derived = [indices.slice(0, sizes[0]), indices.slice(sizes[0])];
    var stated = [cert.winners, cert.alternates].map(function (picks) {
      return picks.map(function (pick) {
        return pick.index;
      });
    });
    var positionsOk = [cert.winners, cert.alternates].every(function (picks) {
      return picks.every(function (pick, i) {
        return pick.position === i + 1;
      });
    });
    var same = listed(derived[0]) === listed(stated[0]) && listed(derived[1]) === listed(stated[1]);
    if (same && positionsOk) {
      report.add(
        "selection",
        true,
        "winners at leaf indices " +
          listed(derived[0]) +
          " and alternates at " +
          listed(derived[1]) +
          ", drawn again from the seed among " +
          eligible +
          " eligible entries",
      );
    } else if (same) {
      report.add("selection", false, "positions must run 1, 2, 3… in draw order");
    } else {
      report.add(
        "selection",
        false,
        "the seed draws winners " +
          listed(derived[0]) +
          " and alternates " +
          listed(derived[1]) +
          " among " +
          eligible +
          " eligible entries; the certificate lists " +
          listed(stated[0]) +
          " and " +
          listed(stated[1]),
      );
    }
  }

  async function checkWinnerLeaves(report, cert, leaf, what) {
    var wrong = [];
    var groups = ["winners", "alternates"];
    for (var g = 0; g < groups.length; g += 1) {
      var picks = cert[groups[g]];
      for (var i = 0; i < picks.length; i += 1) {
        if (toHex(await leaf(picks[i])) !== picks[i].leaf_hash) wrong.push(groups[g] + " " + picks[i].position);
      }
    }
    report.add(
      "winner leaves",
      !wrong.length,
      wrong.length
        ? "leaf_hash does not match the entry's fields" + what + " for " + wrong.join(", ")
        : "each listed leaf_hash is the hash of its entry's fields" + what,
    );
  }

  async function checkCertificateHash(report, cert) {
    var digest;
    try {
      digest = toHex(await sha256(canonicalJson(without(cert, ["certificate_hash", "signature"]))));
    } catch (problem) {
      report.add("certificate hash", false, "the certificate has no canonical form: " + problem.message);
      return;
    }
    report.add(
      "certificate hash",
      digest === cert.certificate_hash,
      "SHA-256 of the canonical JSON is " + digest + (digest === cert.certificate_hash ? "" : ", not the stated one"),
    );
  }

  // Format

  function drawProblems(draw) {
    if (!isObject(draw)) return ["draw is not an object"];
    var problems = [];
    if (!isUuid(draw.id)) problems.push("draw.id must be a lowercase hyphenated UUID");
    ["created_at", "started_at", "completed_at"].forEach(function (name) {
      if (!isTime(draw[name])) problems.push("draw." + name + " is not an RFC 3339 time");
    });
    return problems;
  }

  function pickProblems(picks, name, salted) {
    if (!Array.isArray(picks)) return [name + " is not a list"];
    var problems = [];
    picks.forEach(function (pick, i) {
      var where = name + "[" + (i + 1) + "]";
      if (!isObject(pick)) {
        problems.push(where + " is not an object");
        return;
      }
      if (!isInt(pick.position) || !isCount(pick.index)) problems.push(where + ": position and index must be integers");
      if (!isHex(pick.leaf_hash, 64)) problems.push(where + ": leaf_hash must be 64 lowercase hex digits");
      if (
        !ENTRY_FIELDS.every(function (field) {
          return typeof pick[field] === "string";
        })
      ) {
        problems.push(where + ": " + ENTRY_FIELDS.join(", ") + " must be strings");
      }
      if (salted && !isHex(pick.salt, 32)) problems.push(where + ": salt must be 32 lowercase hex digits");
    });
    return problems;
  }

  function commonProblems(cert, algorithm) {
    var problems = [];
    if (cert.algorithm !== algorithm) problems.push("algorithm is " + JSON.stringify(cert.algorithm));
    problems = problems.concat(drawProblems(cert.draw));
    var config = cert.config;
    if (!isObject(config) || !isCount(config.winners_count) || !isCount(config.alternates_count)) {
      problems.push("config must give winners_count and alternates_count as non-negative integers");
    }
    var counts = cert.counts;
    if (
      !isObject(counts) ||
      !isCount(counts.participants) ||
      !isCount(counts.eligible) ||
      !isObject(counts.excluded) ||
      !Object.keys(counts.excluded).every(function (reason) {
        return isCount(counts.excluded[reason]);
      })
    ) {
      problems.push("counts must give participants, eligible and excluded (by reason) as non-negative integers");
    }
    ["merkle_root", "seed", "certificate_hash"].forEach(function (name) {
      if (!isHex(cert[name], 64)) problems.push(name + " must be 64 lowercase hex digits");
    });
    if (cert.previous_certificate_hash !== null && !isHex(cert.previous_certificate_hash, 64)) {
      problems.push("previous_certificate_hash must be null or 64 lowercase hex digits");
    }
    if (!isTime(cert.issued_at)) problems.push("issued_at is not an RFC 3339 time");
    if (typeof cert.key_id !== "string" || typeof cert.signature !== "string") {
      problems.push("key_id and signature must be strings");
    }
    return problems;
  }

  function v1Problems(cert) {
    var problems = commonProblems(cert, V1);
    ["commitment", "secret"].forEach(function (name) {
      if (!isHex(cert[name], 64)) problems.push(name + " must be 64 lowercase hex digits");
    });
    var beacon = cert.beacon;
    if (
      beacon !== null &&
      !(
        isObject(beacon) &&
        typeof beacon.source === "string" &&
        beacon.source &&
        isCount(beacon.round) &&
        isHex(beacon.value_hex, 64)
      )
    ) {
      problems.push("beacon must be null or {source, round, value_hex}");
    }
    return problems.concat(
      pickProblems(cert.winners, "winners", false),
      pickProblems(cert.alternates, "alternates", false),
    );
  }

  function v2Problems(cert) {
    var problems = commonProblems(cert, V2);
    if (!isHex(cert.collected_root, 64)) problems.push("collected_root must be 64 lowercase hex digits");
    problems = problems.concat(countsProblems(cert.counts));
    ["opened", "sealed"].forEach(function (kind) {
      recordFormProblems(cert[kind], kind).forEach(function (problem) {
        problems.push(kind + ": " + problem);
      });
    });
    var log = cert.log;
    if (!isObject(log) || !sameMembers(log, LOG_MEMBERS)) {
      problems.push("log must be an object with exactly " + LOG_MEMBERS.join(", "));
    } else {
      if (typeof log.origin !== "string" || !isHex(log.head_before_seal, 64)) {
        problems.push("log: origin a string, head_before_seal 64 lowercase hex digits");
      }
      if (
        !Array.isArray(log.following) ||
        !log.following.every(function (item) {
          return isHex(item, 64);
        })
      ) {
        problems.push("log.following must be a list of record hashes");
      }
      if (typeof log.checkpoint !== "string") problems.push("log.checkpoint must be the signed checkpoint note");
      if (!isStringList(log.cosignatures) || !isStringList(log.witnesses)) {
        problems.push("log.cosignatures and log.witnesses must be lists of strings");
      }
    }
    var beacon = cert.beacon;
    if (!isObject(beacon) || !sameMembers(beacon, BEACON_MEMBERS)) {
      problems.push("beacon must be an object with exactly " + BEACON_MEMBERS.join(", "));
    } else if (
      !["source", "chain_hash", "scheme", "public_key", "signature", "randomness"].every(function (name) {
        return typeof beacon[name] === "string";
      }) ||
      !isCount(beacon.genesis_time) ||
      !isInt(beacon.period) ||
      beacon.period < 1 ||
      !isInt(beacon.round) ||
      beacon.round < 1
    ) {
      problems.push("beacon: texts for its keys and hashes, positive integers for genesis_time, period and round");
    } else if (
      !isHex(beacon.chain_hash, 64) ||
      !isHex(beacon.randomness, 64) ||
      !isLowerHex(beacon.public_key) ||
      !isLowerHex(beacon.signature)
    ) {
      problems.push("beacon: chain_hash, public_key, signature and randomness must be lowercase hexadecimal");
    }
    return problems.concat(
      pickProblems(cert.winners, "winners", true),
      pickProblems(cert.alternates, "alternates", true),
    );
  }

  // Log records (docs/fairness.md)

  // The record's members, each of its type (part of the format check); `kind` is what the certificate expects.
  function recordFormProblems(record, kind) {
    if (!isObject(record)) return ["a record is a JSON object"];
    if (record.kind !== kind) return ["it is a " + JSON.stringify(record.kind) + " record"];
    var problems = [];
    var expected = RECORD_COMMON.concat(RECORD_MEMBERS[kind]);
    var missing = expected.filter(function (name) {
      return !has(record, name);
    });
    var extra = Object.keys(record).filter(function (name) {
      return expected.indexOf(name) < 0;
    });
    if (missing.length) problems.push(missing.join(", ") + " missing");
    if (extra.length) problems.push("unknown member(s) " + extra.join(", "));
    if (problems.length) return problems;
    if (typeof record.log !== "string" || !record.log) problems.push("log must name the log's origin");
    if (!isInt(record.seq) || record.seq < 1) problems.push("seq must be a positive integer");
    if (!isUuid(record.draw_id)) problems.push("draw_id must be a lowercase hyphenated UUID");
    if (!isTime(record.at)) problems.push("at must be an RFC 3339 time");
    if (typeof record.key_id !== "string" || typeof record.signature !== "string") {
      problems.push("key_id and signature must be strings");
    }
    if (!isHex(record.record_hash, 64)) problems.push("record_hash must be 64 lowercase hex digits");
    if (kind === "opened") {
      var draw = record.draw;
      if (!isObject(draw) || !sameMembers(draw, ["title", "platforms", "sources", "created_at"])) {
        problems.push("draw must be an object with exactly title, platforms, sources, created_at");
      }
      if (!isObject(record.config)) problems.push("config must be an object");
      var blacklist = record.blacklist;
      if (
        !isObject(blacklist) ||
        !sameMembers(blacklist, ["sha256", "count"]) ||
        !isHex(blacklist.sha256, 64) ||
        !isCount(blacklist.count)
      ) {
        problems.push('blacklist must be {"sha256": 64 hex digits, "count": n}');
      }
      if (record.scheduled_at !== null && !isTime(record.scheduled_at)) {
        problems.push("scheduled_at must be null or an RFC 3339 time");
      }
      var sorted =
        isStringList(record.subjects) &&
        record.subjects.every(function (subject, i) {
          return i === 0 || compareCodePoints(record.subjects[i - 1], subject) < 0;
        });
      if (!sorted) problems.push("subjects must be a sorted list of distinct strings");
      if (
        !isObject(record.beacon) ||
        !sameMembers(record.beacon, ["chain_hash"]) ||
        !isHex(record.beacon.chain_hash, 64)
      ) {
        problems.push('beacon must be {"chain_hash": 64 hex digits}');
      }
    } else {
      if (!isHex(record.opened, 64)) problems.push("opened must be the opened record's record_hash");
      problems = problems.concat(countsProblems(record.counts));
      if (!isHex(record.merkle_root, 64) || !isHex(record.collected_root, 64)) {
        problems.push("merkle_root and collected_root must be 64 lowercase hex digits");
      }
      var beacon = record.beacon;
      if (
        !isObject(beacon) ||
        !sameMembers(beacon, ["chain_hash", "round"]) ||
        !isHex(beacon.chain_hash, 64) ||
        !isInt(beacon.round) ||
        beacon.round < 1
      ) {
        problems.push('beacon must be {"chain_hash": 64 hex digits, "round": a positive integer}');
      }
    }
    return problems;
  }

  async function recordHashProblems(record) {
    var digest;
    try {
      digest = toHex(await sha256(canonicalJson(without(record, ["record_hash", "signature"]))));
    } catch (problem) {
      return ["it has no canonical form: " + problem.message];
    }
    return digest === record.record_hash
      ? []
      : ["its content hashes to " + digest.slice(0, 16) + "…, not to its record_hash"];
  }

  function countsProblems(counts) {
    if (
      !isObject(counts) ||
      !sameMembers(counts, ["participants", "excluded", "eligible"]) ||
      !isCount(counts.participants) ||
      !isCount(counts.eligible) ||
      !isObject(counts.excluded) ||
      !Object.keys(counts.excluded).every(function (reason) {
        return isCount(counts.excluded[reason]);
      })
    ) {
      return ["counts must be {participants, excluded: {reason: n}, eligible}, non-negative integers"];
    }
    var unknown = Object.keys(counts.excluded).filter(function (reason) {
      return EXCLUSION_REASONS.indexOf(reason) < 0;
    });
    if (unknown.length) return ["counts.excluded names unknown reason(s) " + unknown.join(", ")];
    var excluded = Object.keys(counts.excluded).reduce(function (sum, reason) {
      return sum + counts.excluded[reason];
    }, 0);
    if (counts.participants !== counts.eligible + excluded) {
      return ["counts: participants must equal eligible plus every excluded entry"];
    }
    return [];
  }

  function roundTime(beacon) {
    return beacon.genesis_time + (beacon.round - 1) * beacon.period;
  }

  function utcText(seconds) {
    return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  }

  function opensProblems(cert) {
    var opened = cert.opened;
    var problems = [];
    if (opened.draw_id !== cert.draw.id) problems.push("it is of draw " + opened.draw_id + ", not " + cert.draw.id);
    if (opened.log !== cert.log.origin) {
      problems.push("it is in log " + JSON.stringify(opened.log) + ", not " + JSON.stringify(cert.log.origin));
    }
    var differing = ["title", "platforms", "sources", "created_at"].filter(function (name) {
      return !sameJson(opened.draw[name], cert.draw[name]);
    });
    if (differing.length) problems.push("it states another " + differing.join(", ") + " than the certificate");
    if (!sameJson(opened.config, cert.config)) problems.push("it states other rules (config) than the certificate");
    if (opened.beacon.chain_hash !== cert.beacon.chain_hash) {
      problems.push("it announced another randomness chain than the certificate's beacon");
    }
    return problems;
  }

  function sealsProblems(cert) {
    var opened = cert.opened;
    var sealed = cert.sealed;
    var beacon = cert.beacon;
    var problems = [];
    if (sealed.draw_id !== cert.draw.id) problems.push("it is of draw " + sealed.draw_id + ", not " + cert.draw.id);
    if (sealed.log !== opened.log) problems.push("it is in another log than the opened record");
    if (sealed.opened !== opened.record_hash) problems.push("it names another opened record");
    if (!(sealed.seq > opened.seq)) {
      problems.push("the seal (record " + sealed.seq + ") does not come after the opening (record " + opened.seq + ")");
    }
    if (!sameJson(sealed.counts, cert.counts)) problems.push("it states other counts than the certificate");
    if (sealed.merkle_root !== cert.merkle_root || sealed.collected_root !== cert.collected_root) {
      problems.push("it states other roots than the certificate");
    }
    if (sealed.beacon.chain_hash !== beacon.chain_hash || sealed.beacon.round !== beacon.round) {
      problems.push(
        "the seal fixed round " +
          sealed.beacon.round +
          " of chain " +
          sealed.beacon.chain_hash.slice(0, 16) +
          "…; the certificate's beacon is round " +
          beacon.round +
          " of " +
          beacon.chain_hash.slice(0, 16) +
          "…",
      );
    }
    if (parseTime(sealed.at) >= roundTime(beacon) * 1e6) {
      problems.push(
        "round " +
          beacon.round +
          " was published at " +
          utcText(roundTime(beacon)) +
          ", not after the seal (" +
          sealed.at +
          ")",
      );
    }
    return problems;
  }

  async function checkRecord(report, cert, kind) {
    var record = cert[kind];
    var beacon = cert.beacon;
    var problems = (await recordHashProblems(record)).concat(
      kind === "opened" ? opensProblems(cert) : sealsProblems(cert),
    );
    var message =
      kind === "opened"
        ? "record " +
          record.seq +
          " of log " +
          record.log +
          " opened this draw at " +
          record.at +
          " with this title, these sources and these rules"
        : "record " +
          record.seq +
          " sealed " +
          cert.counts.participants +
          " collected entries (" +
          cert.counts.eligible +
          " eligible) and both roots at " +
          record.at +
          ", and fixed round " +
          beacon.round +
          ", published later at " +
          utcText(roundTime(beacon));
    report.add(
      kind + " record",
      !problems.length,
      problems.length ? "the " + kind + " record: " + problems.join("; ") : message,
    );
  }

  // Signed notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature; docs/fairness.md)

  function checkName(name) {
    if (!name || /[+\s\u0000-\u001f]/.test(name))
      throw new Problem("the key name " + JSON.stringify(name) + " is not valid");
  }

  function splitNote(note) {
    if (!note.endsWith("\n") || /[\u0000-\u0009\u000b-\u001f]/.test(note)) {
      throw new Problem("the note does not end with a newline or holds a control character");
    }
    var cut = note.lastIndexOf("\n\n");
    if (cut < 0 || cut + 2 === note.length)
      throw new Problem("a signed note is its text, an empty line, then signature lines");
    return { text: note.slice(0, cut + 1), lines: note.slice(cut + 2, -1).split("\n") };
  }

  function parseSignatureLine(line) {
    var body = line.endsWith("\n") ? line.slice(0, -1) : line;
    if (!body.startsWith(NOTE_DASH)) throw new Problem("a signature line starts with an em dash and a space");
    var rest = body.slice(NOTE_DASH.length);
    var space = rest.indexOf(" ");
    if (space < 0) throw new Problem("a signature line is: em dash, space, key name, space, base64 signature");
    var name = rest.slice(0, space);
    checkName(name);
    var signature = base64(rest.slice(space + 1), "the signature of " + name);
    if (signature.length <= 4) throw new Problem("the signature of " + name + " is too short");
    return { name: name, keyHash: signature.slice(0, 4), signature: signature.slice(4) };
  }

  function parseCheckpoint(text) {
    var lines = text.slice(0, -1).split("\n");
    if (lines.length < 3) throw new Problem("a checkpoint has three lines: its origin, its size and its head");
    if (!/^(0|[1-9][0-9]*)$/.test(lines[1]) || BigInt(lines[1]) > MAX_INT63) {
      throw new Problem("the checkpoint's size " + JSON.stringify(lines[1]) + " is not a decimal number");
    }
    var head = base64(lines[2], "the checkpoint's head");
    if (head.length !== 32) throw new Problem("the checkpoint's head is not 32 bytes");
    if (lines.slice(3).indexOf("") >= 0) throw new Problem("a checkpoint's extension lines are not empty");
    return { origin: lines[0], size: Number(lines[1]), head: head };
  }

  async function keyHash(name, algorithm, publicKey) {
    return (await sha256(concat(utf8(name), new Uint8Array([0x0a, algorithm]), publicKey))).slice(0, 4);
  }

  async function parseVerifierKey(text) {
    var trimmed = String(text).trim();
    var first = trimmed.indexOf("+");
    var second = trimmed.indexOf("+", first + 1);
    if (first < 0 || second < 0) throw new Problem("a verifier key is <name>+<8 hex digits>+<base64 key>");
    var name = trimmed.slice(0, first);
    var hashHex = trimmed.slice(first + 1, second);
    checkName(name);
    if (!isHex(hashHex, 8)) throw new Problem("the key hash of " + name + " is not 8 lowercase hex digits");
    var raw = base64(trimmed.slice(second + 1), "the key of " + name);
    if (raw.length !== 33) throw new Problem("the key of " + name + " is not an Ed25519 key");
    var key = { name: name, algorithm: raw[0], publicKey: raw.slice(1) };
    key.keyHash = await keyHash(name, key.algorithm, key.publicKey);
    if (toHex(key.keyHash) !== hashHex)
      throw new Problem("the key hash of " + name + " does not match its name and key");
    return key;
  }

  async function checkLog(report, cert, keys) {
    var log = cert.log;
    var sealed = cert.sealed;
    var problems = [];
    var note;
    var checkpoint;
    try {
      note = splitNote(log.checkpoint);
      checkpoint = parseCheckpoint(note.text);
    } catch (problem) {
      report.add("log", false, "the checkpoint is not a signed checkpoint note: " + problem.message);
      return null;
    }
    var head = await sha256(
      concat(new Uint8Array([3]), hexToBytes(log.head_before_seal), hexToBytes(sealed.record_hash)),
    );
    for (var i = 0; i < log.following.length; i += 1) {
      head = await sha256(concat(new Uint8Array([3]), head, hexToBytes(log.following[i])));
    }
    var size = sealed.seq + log.following.length;
    var holdsSeal = checkpoint.origin === log.origin && checkpoint.size === size && equalBytes(checkpoint.head, head);
    if (checkpoint.origin !== log.origin) {
      problems.push(
        "the checkpoint is of log " + JSON.stringify(checkpoint.origin) + ", not " + JSON.stringify(log.origin),
      );
    }
    if (checkpoint.size !== size) {
      problems.push(
        "the checkpoint's size is " + checkpoint.size + "; the seal and the following records make " + size,
      );
    }
    if (!equalBytes(checkpoint.head, head)) {
      problems.push(
        "the seal (record " +
          sealed.seq +
          ") and the " +
          log.following.length +
          " following record(s) lead to head " +
          toHex(head).slice(0, 16) +
          "…, not to the checkpoint's " +
          toHex(checkpoint.head).slice(0, 16) +
          "…",
      );
    }
    var signer = null;
    if (keys === null) {
      report.notChecked.push("the checkpoint's signature (the key set is missing)");
    } else {
      var lines = [];
      try {
        lines = note.lines.map(parseSignatureLine);
      } catch (problem) {
        problems.push(problem.message);
      }
      var ids = Object.keys(keys);
      for (var k = 0; k < ids.length && signer === null; k += 1) {
        var hash = await keyHash(log.origin, ED25519_NOTE, keys[ids[k]].raw);
        for (var l = 0; l < lines.length; l += 1) {
          if (
            lines[l].name === log.origin &&
            equalBytes(lines[l].keyHash, hash) &&
            ed25519Valid(lines[l].signature, utf8(note.text), keys[ids[k]].raw)
          ) {
            signer = ids[k];
          }
        }
      }
      if (signer === null) problems.push("no signature line of the checkpoint verifies under a key of the key set");
    }
    report.add(
      "log",
      !problems.length,
      problems.length
        ? problems.join("; ")
        : "the seal and " +
            log.following.length +
            " later record(s) lead to the head of the checkpoint at size " +
            size +
            (signer === null ? "" : ", signed by the log with key " + signer),
    );
    return { text: note.text, holdsSeal: holdsSeal };
  }

  async function checkWitness(report, cert, checkpointText, witnessKeys) {
    var given = witnessKeys !== null;
    var texts = given ? witnessKeys : cert.log.witnesses;
    var keys = [];
    var problems = [];
    for (var i = 0; i < texts.length; i += 1) {
      try {
        var key = await parseVerifierKey(texts[i]);
        if (key.algorithm === COSIGNATURE_V1) keys.push(key);
        else problems.push(key.name + "'s key is not a cosignature key");
      } catch (problem) {
        problems.push(problem.message);
      }
    }
    var deadline = BigInt(roundTime(cert.beacon));
    var good = [];
    var late = [];
    var invalid = 0;
    cert.log.cosignatures.forEach(function (line) {
      var parsed;
      try {
        parsed = parseSignatureLine(line);
      } catch (problem) {
        invalid += 1;
        return;
      }
      keys.forEach(function (key) {
        if (parsed.name !== key.name || !equalBytes(parsed.keyHash, key.keyHash) || parsed.signature.length !== 72)
          return;
        var time = readUint64(parsed.signature, 0);
        if (time > MAX_INT63) return;
        var message = concat(utf8("cosignature/v1\ntime " + time.toString() + "\n"), utf8(checkpointText));
        if (!ed25519Valid(parsed.signature.slice(8), message, key.publicKey)) return;
        (time < deadline ? good : late).push({ name: key.name, time: Number(time) });
      });
    });
    var whose = given ? "" : " (the witness keys the certificate itself names, none given independently)";
    if (good.length) {
      report.add(
        "witness",
        true,
        good
          .map(function (sig) {
            return sig.name + " cosigned the checkpoint at " + utcText(sig.time);
          })
          .join(", ") +
          ", before round " +
          cert.beacon.round +
          " (" +
          utcText(roundTime(cert.beacon)) +
          ")" +
          whose,
      );
      if (!given) report.warnings.push("The witness keys are the ones the certificate names (log.witnesses).");
      return;
    }
    var why;
    if (!keys.length)
      why = "no witness key to check the cosignatures with" + (problems.length ? " (" + problems.join("; ") + ")" : "");
    else if (late.length) {
      why =
        late
          .map(function (sig) {
            return sig.name + " cosigned at " + utcText(sig.time);
          })
          .join(", ") +
        ", not before round " +
        cert.beacon.round +
        " (" +
        utcText(roundTime(cert.beacon)) +
        ")";
    } else if (!cert.log.cosignatures.length) why = "the certificate carries no cosignature";
    else why = "no cosignature verifies under a witness key" + (invalid ? " (" + invalid + " unreadable)" : "");
    report.add("witness", false, why + whose);
  }

  async function checkBeacon(report, cert) {
    var beacon = cert.beacon;
    var problems = [];
    var signature = hexToBytes(beacon.signature);
    if (toHex(await sha256(signature)) !== beacon.randomness)
      problems.push("randomness is not SHA-256 of the signature");
    var pinned = has(KNOWN_CHAINS, beacon.chain_hash) ? KNOWN_CHAINS[beacon.chain_hash] : null;
    if (
      pinned !== null &&
      !["public_key", "genesis_time", "period", "scheme", "source"].every(function (name) {
        return beacon[name] === pinned[name];
      })
    ) {
      problems.push(
        "chain " +
          beacon.chain_hash.slice(0, 16) +
          "… is " +
          pinned.source +
          ", whose public key, genesis, period and scheme are pinned, and the certificate states others",
      );
    }
    if (beacon.scheme !== BLS_SCHEME) {
      problems.push("the scheme " + JSON.stringify(beacon.scheme) + " is not " + BLS_SCHEME);
    } else if (!problems.length) {
      var valid = false;
      try {
        var message = await sha256(uint64be(beacon.round));
        valid =
          signature.length === 48 &&
          beacon.public_key.length === 192 &&
          noble.blsG1Verify(signature, message, hexToBytes(beacon.public_key));
      } catch (error) {
        valid = false;
      }
      if (!valid) problems.push("the BLS signature is not the chain's signature of round " + beacon.round);
    }
    if (problems.length) {
      report.add("beacon", false, problems.join("; "));
      return;
    }
    report.add(
      "beacon",
      true,
      beacon.source +
        " round " +
        beacon.round +
        ": the BLS signature verifies under " +
        (pinned !== null
          ? "the pinned key of " + pinned.source
          : "the chain's public key as the certificate states it") +
        ", and the randomness is its SHA-256",
    );
    if (pinned === null) {
      report.warnings.push(
        (beacon.source === "drand:cleack-sandbox"
          ? "The beacon is not a public one: a development sandbox, whose key is the server's own"
          : "The beacon " +
            beacon.source +
            " is not a public chain this page knows: its key is the one the certificate states") +
          ", so the randomness did not come from a public drand network.",
      );
    }
  }

  async function checkSignatures(report, cert, keys) {
    if (keys === null) {
      report.add(
        "signature",
        false,
        "not checked: the key set published at /.well-known/cleack-signing-key is missing",
      );
      report.notChecked.push("the signatures (the key set is missing)");
      return;
    }
    var problems = [];
    var certificate = signatureProblem(keys, cert.key_id, cert.issued_at, cert.certificate_hash, cert.signature);
    if (certificate) problems.push("certificate: " + certificate);
    if (cert.algorithm === V2) {
      ["opened", "sealed"].forEach(function (kind) {
        var record = cert[kind];
        var problem = signatureProblem(keys, record.key_id, record.at, record.record_hash, record.signature);
        if (problem) problems.push(kind + " record: " + problem);
      });
    }
    report.add(
      "signature",
      !problems.length,
      problems.length
        ? problems.join("; ")
        : "Ed25519 signature by key " +
            cert.key_id +
            " over the certificate hash" +
            (cert.algorithm === V2 ? ", and the log's over both records" : ""),
    );
  }

  async function verifyV1(report, cert, keys) {
    await checkCertificateHash(report, cert);
    var secret = hexToBytes(cert.secret);
    var commitment = toHex(await sha256(secret));
    report.add(
      "commitment",
      commitment === cert.commitment,
      commitment === cert.commitment
        ? "SHA-256 of the revealed secret is the commitment published at creation"
        : "SHA-256 of the revealed secret is not the commitment",
    );
    var counts = cert.counts;
    var excluded = Object.keys(counts.excluded).reduce(function (sum, reason) {
      return sum + counts.excluded[reason];
    }, 0);
    report.add(
      "counts",
      counts.participants === counts.eligible + excluded,
      counts.participants +
        " participants " +
        (counts.participants === counts.eligible + excluded ? "=" : "≠") +
        " " +
        counts.eligible +
        " eligible + " +
        excluded +
        " excluded",
    );
    var message = concat(hexToBytes(cert.merkle_root), hexToBytes(cert.draw.id.replace(/-/g, "")));
    if (cert.beacon !== null) message = concat(message, hexToBytes(cert.beacon.value_hex));
    var seed = await (await hmacSigner(secret))(message);
    var source = cert.beacon === null ? "" : " and beacon " + cert.beacon.source + " round " + cert.beacon.round;
    report.add(
      "seed",
      toHex(seed) === cert.seed,
      "HMAC-SHA256(secret, merkle_root ‖ draw id" +
        source +
        ") " +
        (toHex(seed) === cert.seed ? "is the stated seed" : "is " + toHex(seed) + ", not the stated seed"),
    );
    await checkSelection(report, cert, seed, V1);
    await checkWinnerLeaves(report, cert, leafV1, "");
    await checkSignatures(report, cert, keys);
    if (cert.beacon !== null) {
      report.notChecked.push(
        "that " + cert.beacon.source + " round " + cert.beacon.round + " published this value (ask its API)",
      );
    }
  }

  async function verifyV2(report, cert, keys, witnessKeys) {
    await checkCertificateHash(report, cert);
    await guarded(report, "opened record", function () {
      return checkRecord(report, cert, "opened");
    });
    await guarded(report, "sealed record", function () {
      return checkRecord(report, cert, "sealed");
    });
    var checkpoint = null;
    await guarded(report, "log", async function () {
      checkpoint = await checkLog(report, cert, keys);
    });
    if (checkpoint === null || !checkpoint.holdsSeal) {
      report.add("witness", false, "the cosigned checkpoint does not contain the seal (see the log check)");
    } else {
      await guarded(report, "witness", function () {
        return checkWitness(report, cert, checkpoint.text, witnessKeys);
      });
    }
    await guarded(report, "beacon", function () {
      return checkBeacon(report, cert);
    });
    var seed = await sha256(concat(utf8(V2), hexToBytes(cert.sealed.record_hash), hexToBytes(cert.beacon.randomness)));
    report.add(
      "seed",
      toHex(seed) === cert.seed,
      "SHA-256(\"cleack-draw-v2\" ‖ the sealed record's hash ‖ the round's randomness) " +
        (toHex(seed) === cert.seed ? "is the stated seed" : "is " + toHex(seed) + ", not the stated seed"),
    );
    await checkSelection(report, cert, seed, V2);
    await checkWinnerLeaves(report, cert, leafV2, " and salt");
    await checkSignatures(report, cert, keys);
  }

  // A check that throws (a malformed part the format check let through) fails with what went wrong.
  async function guarded(report, name, run) {
    try {
      await run();
    } catch (error) {
      report.add(name, false, "cannot be checked: " + (error && error.message ? error.message : String(error)));
    }
  }

  function readBlock(id) {
    var element = document.getElementById(id);
    return element === null ? undefined : parseJson(element.textContent);
  }

  async function verifyPage() {
    var report = {
      checks: [],
      notChecked: [],
      warnings: [],
      add: function (name, ok, message) {
        this.checks.push({ name: name, ok: ok, message: message });
      },
    };
    var cert;
    try {
      cert = readBlock("certificate-data");
    } catch (problem) {
      report.add("format", false, "the certificate " + problem.message.replace(/^the JSON/, ""));
      return report;
    }
    if (cert === undefined) {
      report.add("format", false, "the page holds no certificate");
      return report;
    }
    var keys = null;
    try {
      var keySet = readBlock("key-set-data");
      if (keySet !== undefined && keySet !== null) keys = await readKeySet(keySet);
    } catch (problem) {
      report.add("key set", false, "the published key set cannot be read: " + problem.message);
    }
    var witnessKeys = null;
    try {
      var given = readBlock("witness-keys-data");
      if (given !== undefined && given !== null) {
        if (!isStringList(given)) throw new Problem("it is not a list of verifier keys");
        witnessKeys = given;
      }
    } catch (problem) {
      report.add("witness keys", false, "the witness keys cannot be read: " + problem.message);
    }
    var algorithm = isObject(cert) ? cert.algorithm : undefined;
    var problems = !isObject(cert)
      ? ["the certificate is not a JSON object"]
      : algorithm === V2
        ? v2Problems(cert)
        : algorithm === V1
          ? v1Problems(cert)
          : ["algorithm is " + JSON.stringify(algorithm) + "; this page knows " + V1 + " and " + V2];
    if (problems.length) {
      report.add("format", false, problems.join("; "));
      return report;
    }
    report.add("format", true, "a " + algorithm + " certificate with every field");
    if (algorithm === V2) await verifyV2(report, cert, keys, witnessKeys);
    else await verifyV1(report, cert, keys);
    report.notChecked.push(
      "the entries list: the Merkle root" +
        (algorithm === V2 ? ", the collected root" : "") +
        " and the counts need the draw's entries CSV (cleack verify CERTIFICATE.json ENTRIES.csv)",
    );
    if (algorithm === V2) report.notChecked.push("the rest of the public log (cleack verify --log)");
    report.notChecked.push("the chain of earlier certificates (cleack verify --chain)");
    return report;
  }

  // Rendering

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(section, report, milliseconds, cryptoSource) {
    var failed = report.checks.filter(function (check) {
      return !check.ok;
    }).length;
    var ok = failed === 0 && report.checks.length > 0;
    Array.prototype.slice.call(section.querySelectorAll("[data-role=status]")).forEach(function (node) {
      node.remove();
    });
    section.appendChild(
      element(
        "div",
        {
          class: "notice " + (ok ? "notice-success" : "notice-error"),
          role: ok ? "status" : "alert",
          "data-testid": "browser-check-headline",
        },
        ok ? "Checked in your browser: every check passed" : "Checked in your browser: " + failed + " check(s) failed",
      ),
    );
    var list = element("ul", { class: "rule-list checks" });
    report.checks.forEach(function (check) {
      var item = element("li", {
        class: check.ok ? "rule-yes" : "rule-no",
        "data-testid": "browser-check-item",
        "data-check": check.name,
        "data-ok": check.ok ? "true" : "false",
      });
      item.appendChild(element("span", { "aria-label": check.ok ? "passed" : "failed" }, check.ok ? "✓" : "✗"));
      item.appendChild(document.createTextNode(" "));
      var body = element("span");
      body.appendChild(element("strong", {}, check.name));
      body.appendChild(document.createTextNode(": " + check.message));
      item.appendChild(body);
      list.appendChild(item);
    });
    section.appendChild(list);
    report.warnings.forEach(function (warning) {
      section.appendChild(element("p", { class: "muted small", "data-testid": "browser-check-warning" }, warning));
    });
    if (report.notChecked.length) {
      section.appendChild(element("p", { class: "muted small" }, "Not checked in your browser:"));
      var missing = element("ul", { class: "plain-list muted small", "data-testid": "browser-check-not-checked" });
      report.notChecked.forEach(function (what) {
        missing.appendChild(element("li", {}, what));
      });
      section.appendChild(missing);
    }
    section.appendChild(
      element(
        "p",
        { class: "muted small" },
        "Took " +
          Math.round(milliseconds) +
          " ms, hashing with " +
          (cryptoSource === "webcrypto" ? "your browser's WebCrypto" : "the page's own JavaScript (noble)") +
          ".",
      ),
    );
    section.setAttribute("data-failed", String(failed));
    section.setAttribute("data-duration-ms", String(Math.round(milliseconds)));
    section.setAttribute("data-crypto", cryptoSource);
    section.setAttribute("data-state", "done");
  }

  async function run(section) {
    noble = window.CleackCrypto || null;
    var started = performance.now();
    var report;
    if (noble === null) {
      report = {
        checks: [{ name: "verifier", ok: false, message: "the page's cryptography script did not load" }],
        notChecked: ["everything"],
        warnings: [],
      };
    } else {
      try {
        report = await verifyPage();
      } catch (error) {
        report = {
          checks: [
            {
              name: "verifier",
              ok: false,
              message: "stopped: " + (error && error.message ? error.message : String(error)),
            },
          ],
          notChecked: [],
          warnings: [],
        };
      }
    }
    render(section, report, performance.now() - started, subtle ? "webcrypto" : "noble");
  }

  function init() {
    var section = document.getElementById("browser-check");
    if (section === null || section.hasAttribute("data-state")) return;
    section.setAttribute("data-state", "running");
    var status = section.querySelector("[data-role=status]");
    if (status !== null) status.hidden = false;
    run(section);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
