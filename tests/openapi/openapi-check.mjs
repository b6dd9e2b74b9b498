// Checks the control API's contract and what the daemon does against it:
//   node openapi-check.mjs DOC doc             DOC is a valid OpenAPI 3.1 document
//                                              and each of its schemas compiles
//   node openapi-check.mjs DOC exchanges DIR   every answer in DIR is one DOC lists,
//                                              and nothing the daemon serves is
//                                              missing from DOC; DIR holds N.req
//                                              ("METHOD PATH"), N.hdrs (curl -D),
//                                              N.body (curl -o) for each exchange
//   node openapi-check.mjs DOC events FILE...  every line is an Event of DOC
//   node openapi-check.mjs DOC operations      prints "METHOD PATH" for each operation
// Exit 0 when all is well, 1 with one line per problem, 64 for usage.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const DOC_ID = "urn:reconciled:openapi";

function usage() {
  console.error("usage: openapi-check.mjs DOC doc|exchanges LOG|events FILE...|operations");
  process.exit(64);
}

const [docPath, command, ...args] = process.argv.slice(2);
if (!docPath || !command) usage();
const docText = readFileSync(docPath, "utf8");
const doc = YAML.parse(docText);
const problems = [];

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, DOC_ID);

// JSON pointer of a path of keys.
function pointer(keys) {
  return "#" + keys.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

// Follows a local $ref ("#/components/...") of DOC; returns [object, keys].
function deref(obj, keys) {
  while (obj && typeof obj.$ref === "string") {
    if (!obj.$ref.startsWith("#/")) throw new Error("non-local $ref " + obj.$ref);
    keys = obj.$ref.slice(2).split("/").map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    obj = keys.reduce((o, k) => (o === undefined ? undefined : o[k]), doc);
    if (obj === undefined) throw new Error("unresolved $ref at " + pointer(keys));
  }
  return [obj, keys];
}

const validators = new Map();
// The compiled validator of the schema at keys (a path into DOC).
function validatorAt(keys) {
  const id = DOC_ID + pointer(keys);
  if (!validators.has(id)) validators.set(id, ajv.compile({ $ref: id }));
  return validators.get(id);
}

function schemaErrors(v) {
  return ajv.errorsText(v.errors, { separator: "; " });
}

// "type/subtype" of a Content-Type, lower case.
function essence(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase();
}

// The path templates of DOC as [template, regexp, pathItem].
function templates() {
  return Object.entries(doc.paths || {}).map(([t, item]) => {
    const re = new RegExp(
      "^" + t.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&")).join("[^/]+") + "$"
    );
    return [t, re, item];
  });
}

function operations() {
  const out = [];
  for (const [t, , item] of templates())
    for (const m of METHODS) if (item[m]) out.push([m.toUpperCase(), t, item[m]]);
  return out;
}

async function checkDoc() {
  const validator = new Validator();
  const res = await validator.validate(doc);
  if (validator.version !== "3.1")
    problems.push(`the document is OpenAPI ${validator.version}, not 3.1`);
  if (!res.valid)
    for (const e of [].concat(res.errors || []))
      problems.push("not valid OpenAPI 3.1: " + JSON.stringify(e));
  // Every schema compiles (a wrong $ref or keyword shows here).
  for (const name of Object.keys(doc.components?.schemas || {})) {
    try {
      validatorAt(["components", "schemas", name]);
    } catch (e) {
      problems.push(`components/schemas/${name}: ${e.message}`);
    }
  }
  for (const [m, t, op] of operations()) {
    for (const [code, r] of Object.entries(op.responses || {})) {
      try {
        const [resp, keys] = deref(r, ["paths", t, m.toLowerCase(), "responses", code]);
        for (const mt of Object.keys(resp.content || {}))
          if (resp.content[mt].schema) validatorAt([...keys, "content", mt, "schema"]);
      } catch (e) {
        problems.push(`${m} ${t} ${code}: ${e.message}`);
      }
    }
  }
}

// The methods a path item takes, as an Allow header would name them.
function allowed(item) {
  return METHODS.filter((m) => item[m]).map((m) => m.toUpperCase()).sort().join(", ");
}

function sortedList(h) {
  return (h || "").split(",").map((s) => s.trim().toUpperCase()).filter(Boolean).sort().join(", ");
}

function checkBody(what, x, resp, keys) {
  const head = x.method === "HEAD";
  const content = resp.content || {};
  if (head || Object.keys(content).length === 0) {
    if (x.body !== "") problems.push(`${what}: a body where the document has none`);
    return;
  }
  const ct = x.headers["content-type"];
  const mt = Object.keys(content).find((k) => essence(k) === essence(ct));
  if (mt === undefined) {
    problems.push(`${what}: Content-Type ${ct} is not one of ${Object.keys(content).join(", ")}`);
    return;
  }
  const schema = content[mt].schema;
  if (!schema) return;
  let value = x.body;
  if (essence(mt) === "application/json") {
    try {
      value = JSON.parse(x.body);
    } catch (e) {
      problems.push(`${what}: the body is not JSON: ${e.message}`);
      return;
    }
  }
  const v = validatorAt([...keys, "content", mt, "schema"]);
  if (!v(value)) problems.push(`${what}: ${schemaErrors(v)} in ${x.body.slice(0, 300)}`);
}

function checkHeaders(what, x, resp, keys) {
  for (const [name, h0] of Object.entries(resp.headers || {})) {
    const [h, hkeys] = deref(h0, [...keys, "headers", name]);
    const value = x.headers[name.toLowerCase()];
    if (value === undefined) {
      if (h.required) problems.push(`${what}: no ${name} header`);
      continue;
    }
    if (!h.schema) continue;
    const v = validatorAt([...hkeys, "schema"]);
    const typed = h.schema.type === "integer" && /^-?[0-9]+$/.test(value) ? Number(value) : value;
    if (!v(typed)) problems.push(`${what}: header ${name}: ${value}: ${schemaErrors(v)}`);
  }
}

// One exchange; returns the operation it exercised ("METHOD TEMPLATE STATUS").
function checkExchange(x, n, paths) {
  const path = x.path.split("?")[0];
  const what = `exchange ${n}: ${x.method} ${x.path} -> ${x.status}`;
  const found = paths.find(([, re]) => re.test(path));
  const errorWith = (keys) => {
    const v = validatorAt(keys);
    let body;
    try {
      body = JSON.parse(x.body);
    } catch (e) {
      problems.push(`${what}: the body is not JSON`);
      return;
    }
    if (!v(body)) problems.push(`${what}: ${schemaErrors(v)} in ${x.body.slice(0, 300)}`);
  };
  if (!found) {
    // Not in the document: the daemon must not serve it.
    if (x.status === 401 || x.status === 403) {
      if (x.method !== "HEAD") errorWith(["components", "schemas", "Error"]);
      return `${x.method} (unknown path) ${x.status}`;
    }
    if (x.status !== 404) {
      problems.push(`${what}: the daemon serves ${path}, which the document lacks`);
      return null;
    }
    if (x.method !== "HEAD") errorWith(["components", "schemas", "NotFoundError"]);
    return `${x.method} (unknown path) 404`;
  }
  const [t, , item] = found;
  const m = x.method.toLowerCase();
  if (!item[m]) {
    if (x.status === 401 || x.status === 403)
      return `${x.method} ${t} ${x.status} (before routing)`;
    if (x.status === 404 && /no such endpoint/.test(x.body)) {
      problems.push(`${what}: the document lists ${t}, the daemon does not serve it`);
      return null;
    }
    if (x.status !== 405) {
      problems.push(`${what}: ${x.method} is not documented for ${t}, yet the daemon served it`);
      return null;
    }
    if (sortedList(x.headers.allow) !== allowed(item))
      problems.push(`${what}: Allow: ${x.headers.allow}, the document has ${allowed(item)}`);
    if (x.method !== "HEAD") errorWith(["components", "schemas", "MethodError"]);
    return `${x.method} ${t} 405 (undocumented method)`;
  }
  const op = item[m];
  const r = op.responses?.[String(x.status)] ?? op.responses?.default;
  if (r === undefined) {
    problems.push(`${what}: status ${x.status} is not documented for ${x.method} ${t}` +
      ` (${Object.keys(op.responses || {}).join(" ")}); body ${x.body.slice(0, 200)}`);
    return null;
  }
  if (x.status === 404 && /no such endpoint/.test(x.body))
    problems.push(`${what}: the document lists ${x.method} ${t}, the daemon does not serve it`);
  if (x.status === 405)
    problems.push(`${what}: the document lists ${x.method} ${t}, the daemon refuses the method`);
  const [resp, keys] = deref(r, ["paths", t, m, "responses", String(x.status)]);
  checkHeaders(what, x, resp, keys);
  if (x.status === 405 && sortedList(x.headers.allow) !== allowed(item))
    problems.push(`${what}: Allow: ${x.headers.allow}, the document has ${allowed(item)}`);
  checkBody(what, x, resp, keys);
  return `${x.method} ${t} ${x.status}`;
}

function readLines(file) {
  return readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
}

// One exchange of DIR: {method, path, status, headers, body}, or null when
// no answer came (curl wrote no headers).
function readExchange(dir, stem) {
  const [method, ...rest] = readFileSync(join(dir, stem + ".req"), "utf8").trim().split(" ");
  const hfile = join(dir, stem + ".hdrs");
  if (!existsSync(hfile)) return null;
  const lines = readFileSync(hfile, "latin1").split(/\r?\n/);
  const s = lines.findLastIndex((l) => l.startsWith("HTTP/"));
  if (s === -1) return null;
  const headers = {};
  for (const l of lines.slice(s + 1)) {
    const m = /^([^\s:]+):[ \t]*(.*)$/.exec(l);
    if (m && headers[m[1].toLowerCase()] === undefined) headers[m[1].toLowerCase()] = m[2];
  }
  const bfile = join(dir, stem + ".body");
  return {
    method, path: rest.join(" "), status: Number(lines[s].split(" ")[1]), headers,
    body: existsSync(bfile) ? readFileSync(bfile, "utf8") : "",
  };
}

function checkExchanges(dir) {
  const paths = templates();
  const seen = new Map();
  const stems = readdirSync(dir).filter((f) => f.endsWith(".req")).map((f) => f.slice(0, -4))
    .sort((a, b) => (Number(a) || 0) - (Number(b) || 0) || a.localeCompare(b));
  let n = 0;
  for (const stem of stems) {
    const x = readExchange(dir, stem);
    if (x === null) continue;
    n++;
    const key = checkExchange(x, stem, paths);
    if (key) seen.set(key, (seen.get(key) || 0) + 1);
  }
  if (n === 0) problems.push(`no answered exchange in ${dir}`);
  console.log(`${n} answers, ${seen.size} distinct operation/status pairs:`);
  for (const [k, c] of [...seen].sort()) console.log(`  ${k} (${c})`);
}

function checkEvents(files) {
  const v = validatorAt(["components", "schemas", "Event"]);
  let n = 0;
  const types = new Set();
  for (const f of files) {
    readLines(f).forEach((line, i) => {
      const what = `${f}:${i + 1}`;
      let e;
      try {
        e = JSON.parse(line);
      } catch (err) {
        problems.push(`${what}: not JSON: ${err.message}`);
        return;
      }
      n++;
      if (!v(e)) problems.push(`${what}: ${schemaErrors(v)} in ${line}`);
      else if (e.key !== `${e.orderId}:${e.type}`)
        problems.push(`${what}: key ${e.key} is not orderId:type`);
      else types.add(e.type);
    });
  }
  if (n === 0) problems.push("no event to check");
  console.log(`${n} events checked (types: ${[...types].sort().join(" ")})`);
}

switch (command) {
  case "doc":
    await checkDoc();
    break;
  case "exchanges":
    if (args.length !== 1) usage();
    checkExchanges(args[0]);
    break;
  case "events":
    if (args.length === 0) usage();
    checkEvents(args);
    break;
  case "operations":
    for (const [m, t] of operations()) console.log(`${m} ${t}`);
    break;
  default:
    usage();
}
for (const p of problems) console.error(p);
process.exit(problems.length === 0 ? 0 : 1);
