// Publish throughput with MQTT.js, measured the way mqttlab's bench_pub measures it:
// N clients each publish M/N 64-byte messages, then one QoS 1 "barrier" whose PUBACK proves the
// broker processed everything before it. Usage: node mqttjs_pub.js URL USER PASS QOS MESSAGES CLIENTS
const mqtt = require("mqtt");
const [url, username, password, qosArg, messagesArg, clientsArg] = process.argv.slice(2);
const qos = Number(qosArg), messages = Number(messagesArg), clients = Number(clientsArg);
const payload = Buffer.alloc(64);
const run = Math.random().toString(16).slice(2, 8);

function connect(i) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { username, password, clientId: `mqttjs-${run}-${i}`, protocolVersion: 5,
                                  reconnectPeriod: 0 });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

function blast(c, n) {
  // batches of 500; the next batch starts when the previous one's last message was handed to the socket
  return new Promise((resolve) => {
    let sent = 0;
    const step = () => {
      const end = Math.min(n, sent + 500);
      while (sent < end - 1) { c.publish(`bench/${run}/js`, payload, { qos }); sent++; }
      if (sent < n) {
        sent++;
        c.publish(`bench/${run}/js`, payload, { qos }, () => (sent < n ? setImmediate(step) : barrier()));
      } else barrier();
    };
    const barrier = () => c.publish(`bench/${run}/barrier`, "", { qos: 1 }, () => resolve());
    step();
  });
}

(async () => {
  const cs = await Promise.all([...Array(clients).keys()].map(connect));
  const per = Math.floor(messages / clients);
  const t0 = process.hrtime.bigint();
  await Promise.all(cs.map((c) => blast(c, per)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  globalThis.done = true;
  console.log(JSON.stringify({ client: "MQTT.js", qos, sent: per * clients, elapsed_s: seconds,
                               rate_msg_s: Math.round((per * clients) / seconds) }));
  cs.forEach((c) => c.end(true));
})().catch((e) => { console.error(String(e)); process.exit(1); });
process.on("exit", (code) => { if (code === 0 && !process.exitCode && !globalThis.done) process.exitCode = 1; });
