// Cross-check helper: HAP-NodeJS's own HDS codec (hap-nodejs 1.2.0 from tests/interop/node).
// Reads one JSON array of commands on stdin, writes one JSON array of results on stdout.
//   {"op": "decode", "hex": "..."}      -> {"ok": true, "value": <typed>} | {"ok": false, "error": "..."}
//   {"op": "encode", "value": <typed>}  -> {"ok": true, "hex": "..."}
//   {"op": "corpus"}                    -> {"ok": true, "items": [{"name", "hex", "value"}]}
// <typed> tags every value with its kind so that Python can compare without guessing, e.g.
// {"t": "int", "v": 5}, {"t": "data", "hex": "00ff"}, {"t": "dict", "v": [[key, value], ...]}.
"use strict";
const path = require("path");
const P = require(path.join(__dirname, "../../interop/node/node_modules/hap-nodejs/dist/lib/datastream/DataStreamParser"));

function typed(v) {
  if (v === undefined) return { t: "undefined" };
  if (v === null) return { t: "null" };
  if (typeof v === "boolean") return { t: "bool", v };
  if (typeof v === "number") return Number.isInteger(v) ? { t: "int", v } : { t: "float", v: Number.isFinite(v) ? v : String(v) };
  if (typeof v === "string") return { t: "str", v };
  if (Buffer.isBuffer(v)) return { t: "data", hex: v.toString("hex") };
  if (Array.isArray(v)) return { t: "array", v: v.map(typed) };
  if (v instanceof P.UUID) return { t: "uuid", v: v.value };
  if (v instanceof P.SecondsSince2001) return { t: "date", v: v.value };
  if (v instanceof P.Float32) return { t: "float", v: Math.fround(v.value) };
  if (v instanceof P.Float64) return { t: "float", v: v.value };
  if (v instanceof P.ValueWrapper) return typed(v.value);
  if (typeof v === "object") return { t: "dict", v: Object.entries(v).filter(e => e[1] !== undefined).map(([k, x]) => [typed(k), typed(x)]) };
  throw new Error("cannot type " + typeof v);
}

function untyped(x) {
  switch (x.t) {
    case "null": return null;
    case "bool": return x.v;
    case "int": return x.v;
    case "int8": return new P.Int8(x.v);
    case "int16": return new P.Int16(x.v);
    case "int32": return new P.Int32(x.v);
    case "int64": return new P.Int64(x.v);
    case "float": return x.v;
    case "float32": return new P.Float32(x.v);
    case "str": return x.v;
    case "data": return Buffer.from(x.hex, "hex");
    case "uuid": return new P.UUID(x.v);
    case "date": return new P.SecondsSince2001(x.v);
    case "array": return x.v.map(untyped);
    case "dict": { const o = {}; for (const [k, v] of x.v) o[untyped(k)] = untyped(v); return o; }
    default: throw new Error("unknown typed kind " + x.t);
  }
}

function encode(value) {
  const w = new P.DataStreamWriter();
  P.DataStreamParser.encode(value, w);
  return w.getData().toString("hex");
}

function decode(hex) {
  const r = new P.DataStreamReader(Buffer.from(hex, "hex"));
  const value = P.DataStreamParser.decode(r);
  if (r.readerIndex !== r.data.length) throw new Error("trailing bytes: " + (r.data.length - r.readerIndex));
  return value;
}

function corpus() {
  const shared = Buffer.from("cafebabe", "hex");
  const many = [];
  for (let i = 0; i < 60; i++) many.push("k" + i);
  const chunk = Buffer.alloc(300000);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
  const items = {
    helloRequestBody: {},
    helloResponseHeader: { protocol: "control", response: "hello", id: new P.Int64(1), status: new P.Int64(0) },
    responseHeaderId0: { protocol: "dataSend", response: "open", id: new P.Int64(0), status: new P.Int64(0) },
    openRequest: { target: "controller", type: "ipcamera.recording", streamId: 1, reason: "motion" },
    dataEvent: {
      streamId: 1,
      packets: [{ data: chunk.subarray(0, 262144), metadata: { dataType: "mediaFragment", dataSequenceNumber: 2, dataChunkSequenceNumber: 1, isLastDataChunk: false, dataTotalSize: 300000 } }],
      endOfStream: undefined,
    },
    dataEventLast: {
      streamId: 1,
      packets: [{ data: chunk.subarray(262144), metadata: { dataType: "mediaFragment", dataSequenceNumber: 2, dataChunkSequenceNumber: 2, isLastDataChunk: true, dataTotalSize: undefined } }],
      endOfStream: false,
    },
    initEvent: {
      streamId: 7,
      packets: [{ data: Buffer.from("000000186674797069736f6d", "hex"), metadata: { dataType: "mediaInitialization", dataSequenceNumber: 1, dataChunkSequenceNumber: 1, isLastDataChunk: true, dataTotalSize: 12 } }],
      endOfStream: false,
    },
    closeEvent: { streamId: 1, reason: 6 },
    ints: [-1, 0, 1, 38, 39, 40, 127, 128, -128, -129, 32767, 32768, -32768, 262144, 4294967295, -5, -5, 1000, 1000],
    wrappedInts: [new P.Int8(5), new P.Int16(5), new P.Int32(70000), new P.Int64(5), new P.Int8(5)],
    floats: [1.5, -0.25, 1.5, new P.Float32(0.5), new P.Float64(1e300), 3.25e-7],
    strings: ["", "a", "", "a", "x".repeat(32), "y".repeat(33), "z".repeat(300), "z".repeat(70000), "héllo wörld with more than thirty-two bytes ✓"],
    data: [Buffer.alloc(0), Buffer.from("01", "hex"), shared, shared, Buffer.alloc(32, 1), Buffer.alloc(33, 2), Buffer.alloc(256, 3), Buffer.alloc(70000, 4)],
    booleans: [true, false, null, true],
    uuid: new P.UUID("123e4567-e89b-12d3-a456-426614174000"),
    uuids: [new P.UUID("123e4567-e89b-12d3-a456-426614174000"), new P.UUID("123e4567-e89b-12d3-a456-426614174000")],
    date: new P.SecondsSince2001(700000000.5),
    longArray: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    array12: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    longDict: Object.fromEntries(many.slice(0, 20).map((k, i) => [k, i])),
    manyStrings: many.concat(many),
    nested: { a: { b: { c: [{ d: ["e", "e"] }] } } },
  };
  return Object.entries(items).map(([name, value]) => ({ name, hex: encode(value), value: typed(value) }));
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", d => { input += d; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(cmd => {
    try {
      if (cmd.op === "decode") return { ok: true, value: typed(decode(cmd.hex)) };
      if (cmd.op === "encode") return { ok: true, hex: encode(untyped(cmd.value)) };
      if (cmd.op === "corpus") return { ok: true, items: corpus() };
      return { ok: false, error: "unknown op" };
    } catch (e) {
      return { ok: false, error: String(e && e.message || e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
