// The roslibjs client suite: the same checks against the pyros relay and against a real
// rosbridge server (tests/cloud/test_client_suite.py runs it in Node and in Chromium).
//
// runSuite(ROSLIB, cfg) resolves to {check: {ok: bool, detail: string}} and never rejects:
// every check has its own deadline, so one that hangs (a server that never answers) is a
// failure with "timeout", and the next check still runs.
//
// cfg: {url, chatter, state, service, action, param, provide}: topic, service, action and
// parameter names on that server; with `provide` the suite itself serves the service (and
// the action) on a second connection, as a reference server has no robot behind it.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function deadline(promise, ms) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms)),
  ]);
}

function connect(ROSLIB, url) {
  return new Promise((resolve, reject) => {
    const ros = new ROSLIB.Ros({ url });
    ros.on("connection", () => resolve(ros));
    ros.on("error", (error) => reject(new Error(`cannot connect: ${error?.message ?? error}`)));
  });
}

export async function runSuite(ROSLIB, cfg) {
  const results = {};
  const opened = [];
  async function check(name, ms, body) {
    try {
      const detail = await deadline(body(), ms);
      results[name] = { ok: true, detail: String(detail ?? "") };
    } catch (error) {
      results[name] = { ok: false, detail: String(error?.message ?? error) };
    }
  }
  let ros = null;
  await check("connect", 10000, async () => {
    ros = await connect(ROSLIB, cfg.url);
    opened.push(ros);
  });
  if (!ros) return results;
  const other = await connect(ROSLIB, cfg.url).catch(() => null);
  if (other) opened.push(other);

  if (cfg.provide) {
    // The reference server has no robot: this suite serves the service and the action.
    const server = new ROSLIB.Service({ ros: other, name: cfg.service, serviceType: "std_srvs/srv/SetBool" });
    await server.advertise((request, response) => {
      response.success = request.data === true;
      response.message = "flag set";
      return true;
    });
    const actionServer = new ROSLIB.Action({ ros: other, name: cfg.action, actionType: "test_msgs/action/Fibonacci" });
    actionServer.advertise((goal, id) => {
      actionServer.sendFeedback(id, { sequence: [0, 1] });
      actionServer.setSucceeded(id, { sequence: [0, 1, 1] });
    });
    await sleep(500);
  }

  await check("rosapi_topics", 5000, () => new Promise((resolve, reject) => {
    ros.getTopics((result) => {
      if (result.topics.includes(cfg.state)) resolve(`${result.topics.length} topics`);
      else reject(new Error(`${cfg.state} not in ${JSON.stringify(result.topics)}`));
    }, (error) => reject(new Error(String(error))));
  }));

  await check("subscribe_before_first_publish", 15000, async () => {
    const listener = new ROSLIB.Topic({ ros, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    const got = [];
    listener.subscribe((message) => got.push(message.data));
    await sleep(500);
    const talker = new ROSLIB.Topic({ ros: other, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    talker.advertise();
    await sleep(300);
    for (let n = 0; n < 15; n++) {
      talker.publish({ data: `m${n}` });
      await sleep(20);
    }
    for (let waited = 0; got.length < 15 && waited < 5000; waited += 100) await sleep(100);
    listener.unsubscribe();
    const expected = Array.from({ length: 15 }, (_, n) => `m${n}`);
    if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`got ${JSON.stringify(got)}`);
    return "15 of 15, in order";
  });

  await check("throttle_rate", 10000, async () => {
    const listener = new ROSLIB.Topic({ ros, name: cfg.chatter, messageType: "std_msgs/msg/String", throttle_rate: 300 });
    const got = [];
    listener.subscribe((message) => got.push(message.data));
    await sleep(500);
    const talker = new ROSLIB.Topic({ ros: other, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    for (let n = 0; n < 20; n++) {
      talker.publish({ data: `t${n}` });
      await sleep(50);
    }
    await sleep(800);
    listener.unsubscribe();
    if (got.length < 2 || got.length > 8) throw new Error(`${got.length} of 20 in 1 s at 300 ms`);
    return `${got.length} of 20`;
  });

  await check("unsubscribe", 8000, async () => {
    const listener = new ROSLIB.Topic({ ros, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    const got = [];
    const callback = (message) => got.push(message.data);
    listener.subscribe(callback);
    await sleep(300);
    listener.unsubscribe(callback);
    await sleep(300);
    const talker = new ROSLIB.Topic({ ros: other, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    talker.publish({ data: "after" });
    await sleep(700);
    if (got.includes("after")) throw new Error("a message arrived after unsubscribe");
    return "none after unsubscribe";
  });

  await check("latest_value_of_state_topic", 8000, () => new Promise((resolve) => {
    const late = new ROSLIB.Topic({ ros, name: cfg.state, messageType: "std_msgs/msg/String" });
    late.subscribe((message) => {
      late.unsubscribe();
      resolve(`got ${JSON.stringify(message).slice(0, 60)}`);
    });
  }));

  for (const compression of ["cbor", "png"]) {
    await check(`compression_${compression}`, 8000, () => new Promise((resolve) => {
      const listener = new ROSLIB.Topic({ ros, name: cfg.state, messageType: "std_msgs/msg/String", compression });
      listener.subscribe((message) => {
        listener.unsubscribe();
        resolve(`decoded ${JSON.stringify(message).slice(0, 40)}`);
      });
      if (cfg.republish) {
        const talker = new ROSLIB.Topic({ ros: other, name: cfg.state, messageType: "std_msgs/msg/String" });
        setTimeout(() => talker.publish({ data: "state again" }), 500);
      }
    }));
  }

  await check("big_message_2MB", 20000, () => new Promise((resolve, reject) => {
    const big = "x".repeat(2 << 20);
    const listener = new ROSLIB.Topic({ ros, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    listener.subscribe((message) => {
      if (message.data.length === big.length) {
        listener.unsubscribe();
        resolve("2 MiB through");
      }
    });
    const talker = new ROSLIB.Topic({ ros: other, name: cfg.chatter, messageType: "std_msgs/msg/String" });
    setTimeout(() => talker.publish({ data: big }), 500);
  }));

  await check("call_service", 8000, () => new Promise((resolve, reject) => {
    const client = new ROSLIB.Service({ ros, name: cfg.service, serviceType: "std_srvs/srv/SetBool" });
    client.callService({ data: true }, (response) => {
      if (response.success === true) resolve(JSON.stringify(response));
      else reject(new Error(JSON.stringify(response)));
    }, (error) => reject(new Error(`failed: ${error}`)));
  }));

  await check("refused_call_is_answered", 8000, () => new Promise((resolve, reject) => {
    const client = new ROSLIB.Service({ ros, name: cfg.missingService, serviceType: "std_srvs/srv/SetBool" });
    client.callService({ data: true }, (response) => reject(new Error(`answered ${JSON.stringify(response)}`)),
      (error) => resolve(`failed callback: ${String(error).slice(0, 80)}`));
  }));

  await check("action_goal", 15000, () => new Promise((resolve, reject) => {
    const client = new ROSLIB.Action({ ros, name: cfg.action, actionType: "test_msgs/action/Fibonacci" });
    let feedbacks = 0;
    client.sendGoal({ order: 2 }, (result) => resolve(`${feedbacks} feedback, result ${JSON.stringify(result)}`),
      () => { feedbacks += 1; },
      (error) => reject(new Error(`failed: ${error}`)));
  }));

  await check("param_get_set", 8000, () => new Promise((resolve, reject) => {
    const param = new ROSLIB.Param({ ros, name: cfg.param });
    param.set(7, () => {
      param.get((value) => (value === 7 ? resolve("set 7, read 7") : reject(new Error(`read ${value}`))),
        (error) => reject(new Error(`get failed: ${error}`)));
    }, (error) => reject(new Error(`set failed: ${error}`)));
  }));

  for (const connection of opened) connection.close();
  return results;
}
