// Drives our HAP server with hap-controller (an independent Node controller) and prints one
// JSON line per step. The Python test reads the lines, acts on "subscribed" (it changes a
// value server-side) and asserts on the results.
// Usage: node hap_controller_flow.js '<json: {port, pin, ids:{...}}>'
"use strict";
const crypto = require("crypto");
const { HttpClient, PairMethods } = require("hap-controller");

const cfg = JSON.parse(process.argv[2]);
const host = "127.0.0.1";
const id = "AA:BB:CC:DD:EE:01";
const out = (step, data) => process.stdout.write(JSON.stringify({ step, data }) + "\n");
const cid = (iid) => `1.${iid}`;

(async () => {
  const setup = new HttpClient(id, host, cfg.port);
  await setup.identify();
  out("identify-unpaired", "ok");
  await setup.pairSetup(cfg.pin, PairMethods.PairSetup);
  const pairing = setup.getLongTermData();
  await setup.close();
  out("paired", { accessory: pairing.AccessoryPairingID });

  const c = new HttpClient(id, host, cfg.port, pairing, { usePersistentConnections: true });
  const db = await c.getAccessories();
  out("accessories", db.accessories[0].services.map((s) => s.type));

  const ids = cfg.ids;
  const read = await c.getCharacteristics([cid(ids.on), cid(ids.brightness), cid(ids.text)],
    { meta: true, perms: true, type: true, ev: true });
  out("read", JSON.parse(JSON.stringify(read)));

  const written = {};
  written[cid(ids.on)] = true;
  written[cid(ids.brightness)] = 33;
  written[cid(ids.hue)] = 180.5;
  written[cid(ids.text)] = "from node";
  written[cid(ids.tlv)] = Buffer.from([1, 1, 9]).toString("base64");
  await c.setCharacteristics(written);
  out("written", "ok");

  const wr = {};
  wr[cid(ids.wr)] = { value: Buffer.from([1, 2, 3]).toString("base64"), r: true };
  out("write-response", JSON.parse(JSON.stringify(await c.setCharacteristics(wr))));

  const got = new Promise((resolve) => c.on("event", (ev) => resolve(ev)));
  await c.subscribeCharacteristics([cid(ids.motion)]);
  out("subscribed", "ok");
  const ev = await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error("no event")), 10000))]);
  out("event", JSON.parse(JSON.stringify(ev)));

  const newId = crypto.randomUUID();
  const { publicKey } = crypto.generateKeyPairSync("ed25519");
  const ltpk = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  await c.addPairing(newId, ltpk, false);
  const listed = await c.listPairings();
  const identifiers = [];
  for (const [k, v] of listed) if (k === 1) identifiers.push(...(Array.isArray(v) ? v : [v]).map(String));
  out("listed", { count: identifiers.length, raw: JSON.parse(JSON.stringify([...listed].map(([k]) => k))) });
  await c.removePairing(Buffer.from(newId));
  out("removed-other", "ok");
  // removePairing force-closes hap-controller's persistent connection and the client then
  // reuses the dead socket (a client bug), so the last step uses a fresh client.
  await c.close();
  const last = new HttpClient(id, host, cfg.port, pairing);
  await last.removePairing(pairing.iOSDevicePairingID);
  out("unpaired", "ok");
  await last.close();
  process.exit(0);
})().catch((err) => {
  out("error", String(err && err.stack || err));
  process.exit(1);
});
