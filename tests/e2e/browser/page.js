// The page of the browser test (tests/e2e/test_js_sdk.py): Decart's JS SDK, as an app uses it,
// with Chromium's fake camera, against the emulator. It reports to the server that serves it:
// each `stats` event (POST /stats, whose answer says when to stop), its logs (POST /log), an
// error (POST /error), and its end (POST /done) once it has disconnected.
import { createDecartClient, models } from "@decartai/sdk";
import { RemoteVideoTrack, TrackEvent } from "livekit-client";

const params = new URLSearchParams(location.search);

// The one correction: SDK 0.1.20 takes the playout time of a generated frame from livekit's
// TimeSyncUpdate (the receiver's RTCRtpSynchronizationSource.timestamp) and adds
// performance.timeOrigin to it, taking it for a time relative to the page's origin. Chromium
// reports it in wall-clock milliseconds already (as the WebRTC spec defines it), so every
// latency came out ~56 years long and was dropped as implausible (over 60 s), whatever the
// service echoed. Where the timestamp is wall-clock, the SDK gets it relative to timeOrigin.
// What the SDK would have made of each frame on its own is counted as well (`stock`).
const SDK_PLAUSIBLE_MS = 60_000; // the SDK drops latencies outside 0..60 s
const clock = { corrected: 0, stockKept: 0, stockDropped: 0 };
const emit = RemoteVideoTrack.prototype.emit;
RemoteVideoTrack.prototype.emit = function (event, ...args) {
  if (event === TrackEvent.TimeSyncUpdate) {
    const { timestamp, rtpTimestamp } = args[0];
    const meta = this.lookupFrameMetadata({ rtpTimestamp });
    if (meta && meta.userTimestamp > 0n) {
      const stock = performance.timeOrigin + timestamp - Number(meta.userTimestamp) / 1000;
      if (stock >= 0 && stock <= SDK_PLAUSIBLE_MS) clock.stockKept++;
      else clock.stockDropped++;
    }
    if (Math.abs(timestamp - Date.now()) < SDK_PLAUSIBLE_MS) {
      args[0] = { ...args[0], timestamp: timestamp - performance.timeOrigin };
      clock.corrected++;
    }
  }
  return emit.call(this, event, ...args);
};

function post(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

function text(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack || String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function log(level, ...args) {
  post("/log", { level, text: args.map(text).join(" ") }).catch(() => {});
}

window.addEventListener("error", (e) => post("/error", { error: text(e.error || e.message) }));
window.addEventListener("unhandledrejection", (e) => post("/error", { error: text(e.reason) }));

const logger = {
  debug: () => {},
  info: (message, data) => log("info", message, data ?? ""),
  warn: (message, data) => log("warn", message, data ?? ""),
  error: (message, data) => log("error", message, data ?? ""),
};

async function main() {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: 1280, height: 720, frameRate: 30 },
    audio: false,
  });
  const client = createDecartClient({
    apiKey: params.get("key"),
    realtimeBaseUrl: params.get("emulator"),
    telemetry: false, // nothing for the service's telemetry endpoint
    logger,
  });
  const video = document.getElementById("output");
  const started = performance.now();
  const realtime = await client.realtime.connect(stream, {
    model: models.realtime(params.get("model")),
    onRemoteStream: (remote) => {
      video.srcObject = remote;
      video.play().catch((e) => log("warn", "play()", e));
    },
    debugQuality: true,
  });
  log("info", `connected in ${Math.round(performance.now() - started)} ms`);
  let stopping = false;
  realtime.on("stats", async (stats) => {
    if (stopping) return;
    const answer = await post("/stats", {
      glassToGlass: stats.glassToGlass,
      framesDecoded: stats.video?.framesDecoded ?? 0,
      framesPerSecond: stats.video?.framesPerSecond ?? 0,
      subscribeToken: realtime.subscribeToken != null,
      clock,
    });
    if ((await answer.json()).stop && !stopping) {
      stopping = true;
      realtime.disconnect();
      for (const track of stream.getTracks()) track.stop();
      await post("/done", {});
    }
  });
}

main().catch((e) => post("/error", { error: text(e) }));
