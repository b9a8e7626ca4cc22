// The reference: HAP-NodeJS 1.2.0's own HKSV camera, configured with the values our camera
// advertises (passed as JSON in argv[4]), on 127.0.0.1 with no mDNS. The interop test pairs
// with it and compares its /accessories with ours.
// Usage: node reference_camera.js PORT STORAGE_DIR '<json options>'
"use strict";
const { EventEmitter } = require("events");
const advertiser = require("hap-nodejs/dist/lib/Advertiser");
const { HAPServer } = require("hap-nodejs/dist/lib/HAPServer");

// No multicast at all: Accessory.publish() looks its advertiser class up at call time.
advertiser.CiaoAdvertiser = class extends EventEmitter {
  constructor(info) { super(); this.accessoryInfo = info; }
  initPort() {}
  async startAdvertising() {}
  updateAdvertisement() {}
  async destroy() {}
};
// HAP-NodeJS listens on every interface even with bind set; keep it on loopback.
const listen = HAPServer.prototype.listen;
HAPServer.prototype.listen = function (port) { return listen.call(this, port, "127.0.0.1"); };

const hap = require("hap-nodejs");
const [port, storage, raw] = process.argv.slice(2);
const opt = JSON.parse(raw);
hap.HAPStorage.setCustomStoragePath(storage);

const delegate = {
  handleSnapshotRequest(_req, cb) { cb(undefined, Buffer.from([0xff, 0xd8, 0xff, 0xd9])); },
  prepareStream(_req, cb) { cb(new Error("reference does not stream")); },
  handleStreamRequest(_req, cb) { cb(); },
  updateRecordingActive() {},
  updateRecordingConfiguration() {},
  async *handleRecordingStreamRequest() {},
  closeRecordingStream() {},
};
const camera = new hap.Accessory("Reference Camera", hap.uuid.generate("hksv-sidecar:reference"));
camera.configureController(new hap.CameraController({
  cameraStreamCount: 1,
  delegate,
  streamingOptions: {
    supportedCryptoSuites: [hap.SRTPCryptoSuites.AES_CM_128_HMAC_SHA1_80],
    video: { codec: { profiles: opt.streamProfiles, levels: opt.streamLevels }, resolutions: opt.streamResolutions },
    // Two-way audio: what a doorbell with a speaker configures (Microphone and Speaker services).
    ...(opt.twoWayAudio ? { audio: { twoWayAudio: true, codecs: [{ type: hap.AudioStreamingCodecType.OPUS,
      samplerate: [hap.AudioStreamingSamplerate.KHZ_16, hap.AudioStreamingSamplerate.KHZ_24] }] } } : {}),
  },
  recording: {
    delegate,
    options: {
      prebufferLength: opt.prebuffer,
      overrideEventTriggerOptions: opt.triggers,
      mediaContainerConfiguration: { type: hap.MediaContainerType.FRAGMENTED_MP4, fragmentLength: opt.fragment },
      video: { type: hap.VideoCodecType.H264, parameters: { profiles: opt.profiles, levels: opt.levels },
               resolutions: opt.resolutions },
      audio: { codecs: { type: hap.AudioRecordingCodecType.AAC_LC, audioChannels: 1,
                         samplerate: opt.sampleRates, bitrateMode: 0 } },
    },
  },
  sensors: { motion: true },
}));
camera.publish({ username: "AA:BB:CC:DD:EE:07", pincode: "031-45-154", category: hap.Categories.IP_CAMERA,
                 port: Number(port), bind: "127.0.0.1", addIdentifyingMaterial: false })
  .then(() => process.stdout.write(`LISTENING 127.0.0.1:${port}\n`));
process.on("SIGTERM", () => process.exit(0));
