//! The fault benchmark of `bench/faults`: two Weft instances on one PostgreSQL and a Redis
//! of the benchmark's own, REPLIES chat replies streamed by an OpenAI-compatible server run
//! by this process (TOKENS tokens `t0 t1 …`, one every TOKEN_MS), each read over WebSocket
//! by a client that resumes with `after` on whichever instance answers whenever its
//! subscription ends, and a dashboard following `workspaceExecutions` on the instance that
//! stays. Meanwhile Redis is restarted RESTARTS times (SIGTERM, then started again: with
//! AOF it comes back with its data, without it empty) and the second instance gets SIGTERM
//! and is started again. Reports replies completed, tokens lost, duplicated and out of
//! order as the clients saw them, gaps in `seq`, and executions whose last state on the
//! dashboard is not their final one.
//!
//!   faults_bench MODE REPLIES RESTARTS TOKENS TOKEN_MS     (MODE: aof | none)
//!
//! Reads WEFT_BIN (the server binary), REDIS_PORT, PORT_A, PORT_B, WORK_DIR and the
//! server's environment (DATABASE_URL, WEFT_* shared by both instances).

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod api;

use api::{ChatApplication, Error};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let persistent = match args.first().map(String::as_str) {
        Some("aof") | None => true,
        Some("none") => false,
        Some(other) => return Err(format!("unknown mode {other} (aof | none)").into()),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(Plan {
        persistent,
        replies: number(1, 40) as usize,
        restarts: number(2, 3) as usize,
        tokens: number(3, 200) as usize,
        pace: Duration::from_millis(number(4, 40)),
    }))
}

struct Plan {
    persistent: bool,
    replies: usize,
    restarts: usize,
    tokens: usize,
    pace: Duration,
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// Sends SIGTERM to a child process.
async fn terminate(child: &Child) -> Result<(), Error> {
    let pid = child.id().ok_or("the process has exited")?;
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    Ok(())
}

async fn wait_for_port(port: u16, what: &str) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err(format!("{what} did not start").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The benchmark's own redis-server.
struct Redis {
    port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Option<Child>,
}

impl Redis {
    async fn start(&mut self) -> Result<(), Error> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendfsync", "everysec"])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        wait_for_port(self.port, "redis-server").await
    }

    /// SIGTERM (Redis writes its AOF and exits), then started again.
    async fn restart(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            terminate(&child).await?;
            child.wait().await?;
        }
        self.start().await
    }
}

/// One Weft instance.
struct Instance {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) -> Result<(), Error> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(env("WEFT_BIN")?)
            .env("WEFT_BIND", format!("127.0.0.1:{}", self.port))
            .env("WEFT_PUBLIC_URL", self.base())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = reqwest::get(format!("{}/readyz", self.base()))
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the instance on {} did not start", self.port).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, and the time until it exited (its runs drain first).
    async fn stop(&mut self) -> Result<Duration, Error> {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            terminate(&child).await?;
            child.wait().await?;
        }
        Ok(started.elapsed())
    }
}

/// The OpenAI-compatible server: `t0 t1 … t<n-1> `, one token every `pace`.
async fn model_server(tokens: usize, pace: Duration) -> Result<String, Error> {
    let chat = move || async move {
        let stream = futures_util::stream::unfold(0usize, move |i| async move {
            if i > tokens {
                return None;
            }
            if i == tokens {
                let end = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":10,\"total_tokens\":20}}\n\ndata: [DONE]\n\n";
                return Some((Ok::<_, Infallible>(Bytes::from(end)), i + 1));
            }
            if i > 0 {
                tokio::time::sleep(pace).await;
            }
            let chunk =
                json!({ "choices": [{ "index": 0, "delta": { "content": format!("t{i} ") } }] });
            Some((Ok(Bytes::from(format!("data: {chunk}\n\n"))), i + 1))
        });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap_or_default()
    };
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    api::serve(router, "/v1").await
}

async fn setup(base: &str, model_url: &str) -> Result<ChatApplication, Error> {
    api::Api::at(base)
        .chat_application("faults-bench", model_url)
        .await
}

/// The instances a client may reach (the load balancer's list).
type Balancer = Arc<Mutex<Vec<String>>>;

/// Sends a message through the first instance that answers; the assistant message and its
/// execution.
async fn send(
    balancer: &Balancer,
    setup: &ChatApplication,
    n: usize,
) -> Result<(String, String), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = n;
    loop {
        let base = {
            let list = balancer.lock().await;
            list[attempt % list.len()].clone()
        };
        attempt += 1;
        let sent = reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .bearer_auth(&setup.key)
            .json(&json!({ "query": "mutation($i: SendMessageInput!) { sendMessage(input: $i) { assistantMessage { id executionId } } }",
                           "variables": { "i": { "applicationId": setup.application, "query": "Count",
                                                 "endUserId": format!("user-{n}") } } }))
            .send()
            .await;
        if let Ok(answer) = sent
            && let Ok(answer) = answer.json::<Value>().await
        {
            let message = &answer["data"]["sendMessage"]["assistantMessage"];
            if let (Some(id), Some(execution)) =
                (message["id"].as_str(), message["executionId"].as_str())
            {
                return Ok((id.to_string(), execution.to_string()));
            }
        }
        if Instant::now() > deadline {
            return Err("no instance took the message".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one client saw of its reply.
#[derive(Default)]
struct Followed {
    /// The text as the events rebuild it (DELTAs added, a REPLACE restarting it).
    text: String,
    /// `seq`s that did not follow the previous one.
    seq_gaps: usize,
    /// `seq`s seen twice.
    seq_repeats: usize,
    ended: bool,
    status: String,
    resumes: usize,
}

/// A chat UI: follows the reply, and resumes after the last `seq` on the next instance
/// whenever its subscription or socket ends before END.
async fn follow(balancer: Balancer, key: String, message: String, n: usize) -> Followed {
    let mut seen = Followed::default();
    let mut last = 0i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut attempt = n;
    'connections: while Instant::now() < deadline {
        let base = {
            let list = balancer.lock().await;
            list[attempt % list.len()].clone()
        };
        attempt += 1;
        let Ok(mut socket) = api::socket(&base, &key).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription($m: UUID!, $a: Int) { messageStream(messageId: $m, after: $a) { seq kind delta text message { status } } }",
            "variables": { "m": message, "a": last } } });
        if socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), socket.next()).await;
            let Ok(Some(Ok(frame))) = next else {
                seen.resumes += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'connections;
            };
            let Message::Text(text) = frame else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if frame["type"] != "next" || !frame["payload"]["errors"].is_null() {
                if frame["type"] == "ping" {
                    continue;
                }
                seen.resumes += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'connections;
            }
            let event = &frame["payload"]["data"]["messageStream"];
            let seq = event["seq"].as_i64().unwrap_or(0);
            if seq <= last {
                seen.seq_repeats += 1;
                continue;
            }
            if seq != last + 1 {
                seen.seq_gaps += 1;
            }
            last = seq;
            match event["kind"].as_str() {
                Some("DELTA") => seen.text.push_str(event["delta"].as_str().unwrap_or("")),
                Some("REPLACE") => seen.text = event["text"].as_str().unwrap_or("").to_string(),
                Some("END") => {
                    seen.ended = true;
                    seen.status = event["message"]["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    return seen;
                }
                Some("ERROR") => {
                    seen.ended = true;
                    seen.status = "ERROR".into();
                    return seen;
                }
                _ => {}
            }
        }
    }
    seen
}

/// The dashboard: the last status `workspaceExecutions` gave for each execution, following
/// it again whenever the subscription ends.
async fn dashboard(
    base: String,
    token: String,
    workspace: String,
    states: Arc<Mutex<HashMap<String, String>>>,
) {
    loop {
        let Ok(mut socket) = api::socket(&base, &token).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let subscribe = json!({ "id": "d", "type": "subscribe", "payload": {
            "query": "subscription($w: UUID!) { workspaceExecutions(workspaceId: $w) { id status } }",
            "variables": { "w": workspace } } });
        if socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        while let Some(Ok(frame)) = socket.next().await {
            let Message::Text(text) = frame else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if frame["type"] != "next" {
                if frame["type"] == "ping" {
                    continue;
                }
                break;
            }
            let record = &frame["payload"]["data"]["workspaceExecutions"];
            if let (Some(id), Some(status)) = (record["id"].as_str(), record["status"].as_str()) {
                states
                    .lock()
                    .await
                    .insert(id.to_string(), status.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A token's position in the reply: `t17` → 17.
fn position(token: &str) -> Option<usize> {
    token.strip_prefix('t')?.parse().ok()
}

async fn run(plan: Plan) -> Result<(), Error> {
    let work = PathBuf::from(env("WORK_DIR")?);
    let mode = if plan.persistent { "aof" } else { "none" };
    let redis_dir = work.join(format!("redis-{mode}"));
    let _ = std::fs::remove_dir_all(&redis_dir);
    std::fs::create_dir_all(&redis_dir)?;
    let mut redis = Redis {
        port: env("REDIS_PORT")?.parse()?,
        dir: redis_dir,
        persistent: plan.persistent,
        child: None,
    };
    redis.start().await?;
    let mut a = Instance {
        port: env("PORT_A")?.parse()?,
        log: work.join(format!("a-{mode}.log")),
        child: None,
    };
    let mut b = Instance {
        port: env("PORT_B")?.parse()?,
        log: work.join(format!("b-{mode}.log")),
        child: None,
    };
    a.start().await?;
    b.start().await?;
    let model_url = model_server(plan.tokens, plan.pace).await?;
    let setup = Arc::new(setup(&a.base(), &model_url).await?);
    let balancer: Balancer = Arc::new(Mutex::new(vec![a.base(), b.base()]));

    let states = Arc::new(Mutex::new(HashMap::new()));
    let watching = tokio::spawn(dashboard(
        a.base(),
        setup.token.clone(),
        setup.workspace.to_string(),
        states.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reply_time = plan.pace * plan.tokens as u32;
    println!(
        "== mode {mode}: {} replies of {} tokens (~{:.1} s each) across two instances; Redis restarted {} times; instance B stopped with SIGTERM and started again",
        plan.replies,
        plan.tokens,
        reply_time.as_secs_f64(),
        plan.restarts
    );
    // Half the replies now, half while the faults happen.
    let mut clients = Vec::new();
    let mut executions = Vec::new();
    let first_wave = plan.replies / 2;
    for n in 0..first_wave {
        let (message, execution) = send(&balancer, &setup, n).await?;
        executions.push(execution);
        clients.push(tokio::spawn(follow(
            balancer.clone(),
            setup.key.clone(),
            message,
            n,
        )));
    }
    let started = Instant::now();
    let faults = {
        let balancer = balancer.clone();
        let gap = reply_time / (plan.restarts as u32 + 1);
        async move {
            let mut log = Vec::new();
            let restarts = async {
                for k in 0..plan.restarts {
                    tokio::time::sleep(gap).await;
                    redis.restart().await?;
                    log.push(format!(
                        "Redis restart {} at {:.1} s",
                        k + 1,
                        started.elapsed().as_secs_f64()
                    ));
                }
                Ok::<_, Error>(())
            };
            let deploy = async {
                tokio::time::sleep(gap / 2).await;
                balancer.lock().await.retain(|base| *base != b.base());
                let took = b.stop().await?;
                b.start().await?;
                balancer.lock().await.push(b.base());
                Ok::<_, Error>(took)
            };
            let (restarted, took) = tokio::join!(restarts, deploy);
            restarted?;
            let took = took?;
            log.push(format!(
                "instance B drained and exited in {:.1} s",
                took.as_secs_f64()
            ));
            Ok::<_, Error>((log, redis, b))
        }
    };
    let second_wave = async {
        tokio::time::sleep(reply_time / 3).await;
        let mut sent = Vec::new();
        for n in first_wave..plan.replies {
            sent.push(send(&balancer, &setup, n).await?);
        }
        Ok::<_, Error>(sent)
    };
    let (faulted, second) = tokio::join!(faults, second_wave);
    let (log, _redis, _b) = faulted?;
    for (n, (message, execution)) in second?.into_iter().enumerate() {
        executions.push(execution);
        clients.push(tokio::spawn(follow(
            balancer.clone(),
            setup.key.clone(),
            message,
            first_wave + n,
        )));
    }
    let mut followed = Vec::new();
    for client in clients {
        followed.push(client.await?);
    }
    // The dashboard's last word on every run, once the feed has settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watching.abort();

    let (
        mut completed,
        mut lost,
        mut duplicated,
        mut disordered,
        mut gaps,
        mut repeats,
        mut resumes,
    ) = (0, 0, 0, 0, 0, 0, 0);
    for seen in &followed {
        if seen.ended && seen.status == "COMPLETED" {
            completed += 1;
        }
        let got: Vec<usize> = seen.text.split_whitespace().filter_map(position).collect();
        let mut counts = vec![0usize; plan.tokens];
        for &p in &got {
            if let Some(c) = counts.get_mut(p) {
                *c += 1;
            }
        }
        lost += counts.iter().filter(|&&c| c == 0).count();
        duplicated += counts.iter().map(|&c| c.saturating_sub(1)).sum::<usize>();
        disordered += got.windows(2).filter(|w| w[1] < w[0]).count();
        gaps += seen.seq_gaps;
        repeats += seen.seq_repeats;
        resumes += seen.resumes;
    }
    let states = states.lock().await;
    let stale = executions
        .iter()
        .filter(|id| states.get(*id).map(String::as_str) != Some("SUCCEEDED"))
        .count();
    for line in &log {
        println!("   {line}");
    }
    println!(
        "mode {mode}: replies completed {completed}/{}; tokens lost {lost}, duplicated {duplicated}, out of order {disordered}; seq gaps {gaps}, repeats {repeats}; stale dashboard states {stale}/{}; client resumes {resumes}; {:.1} s",
        plan.replies,
        executions.len(),
        started.elapsed().as_secs_f64()
    );
    a.stop().await?;
    Ok(())
}
