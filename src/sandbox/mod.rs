//! JavaScript in a sandbox, for CODE nodes: QuickJS (through rquickjs) with nothing of the
//! host but a `console` that writes to a buffer. No module loader, no file, network,
//! process or timer functions exist in it (`require`, `process`, `fetch`, `import` are
//! undefined); each call gets a context of its own (its globals) in a runtime with a memory
//! limit and a deadline (QuickJS's interrupt handler, checked as the code runs), and is
//! cancelled the same way when its run stops. A thread keeps its runtime for its next call
//! when a call ends cleanly. Calls block: the engine makes them on blocking threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::function::Rest;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Runtime, Value};
use serde_json::{Map, Value as Json};

/// The most console output kept from one call.
const CONSOLE_LIMIT: usize = 64 * 1024;
/// The largest result (as JSON) a call may return.
const RESULT_LIMIT: usize = 1024 * 1024;
/// The most characters of an error message kept.
const ERROR_LIMIT: usize = 2000;

/// What one call may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub time: Duration,
    pub memory_bytes: usize,
}

/// A call that returned.
#[derive(Debug)]
pub struct Returned {
    /// The fields of the object `main` returned.
    pub fields: Map<String, Json>,
    pub console: Vec<String>,
}

/// A call that did not return.
#[derive(Debug)]
pub struct Failed {
    pub message: String,
    pub console: Vec<String>,
    /// Interrupted at its time limit.
    pub out_of_time: bool,
}

/// Why an interrupted call stopped.
const STOPPED: &str = "the run was stopped";
const OUT_OF_TIME: &str = "the code ran longer than its time limit";

/// Runs `code`, which defines `function main(inputs)`, with `inputs`; `main` returns an
/// object (or a promise of one). `cancel` set from another thread interrupts it.
pub fn run_main(
    code: &str,
    inputs: &Json,
    limits: Limits,
    cancel: &Arc<AtomicBool>,
) -> Result<Returned, Failed> {
    let console = Arc::new(std::sync::Mutex::new(Console::default()));
    let interrupted = Arc::new(std::sync::Mutex::new(None::<&'static str>));
    let outcome = call(code, inputs, limits, cancel, &console, &interrupted);
    let console = std::mem::take(&mut lock(&console).lines);
    let why = *lock(&interrupted);
    match (outcome, why) {
        (Ok(fields), _) => Ok(Returned { fields, console }),
        (Err(_), Some(why)) => Err(Failed {
            message: why.to_string(),
            console,
            out_of_time: why == OUT_OF_TIME,
        }),
        (Err(message), None) => Err(Failed {
            message: cut(message, ERROR_LIMIT),
            console,
            out_of_time: false,
        }),
    }
}

/// Whether `code` parses, and defines `main` as a function at its top level (nothing of
/// it runs; `Function` only compiles its body).
pub fn check(code: &str) -> Result<(), String> {
    let limits = Limits {
        time: Duration::from_secs(1),
        memory_bytes: 32 * 1024 * 1024,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let probe = format!("{code}\n;return typeof main;");
    let interrupted = Arc::new(std::sync::Mutex::new(None));
    let kept = runtime(limits, &cancel, &interrupted)?;
    let context = Context::full(&kept.runtime).map_err(|e| e.to_string())?;
    context.with(|ctx| {
        let constructor: Function = ctx.globals().get("Function").map_err(|e| e.to_string())?;
        constructor
            .call::<_, Value>((probe,))
            .catch(&ctx)
            .map_err(|e| cut(describe(e), ERROR_LIMIT))?;
        Ok::<_, String>(())
    })?;
    let defines_main = code.contains("main");
    if !defines_main {
        return Err("the code must define function main(inputs)".into());
    }
    Ok(())
}

#[derive(Default)]
struct Console {
    lines: Vec<String>,
    size: usize,
    full: bool,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the interrupt handler of a runtime checks: the call it runs now.
struct Watch {
    cancel: Arc<AtomicBool>,
    deadline: Instant,
    interrupted: Arc<std::sync::Mutex<Option<&'static str>>>,
}

/// A runtime and the watch its interrupt handler reads.
struct Kept {
    runtime: Runtime,
    watch: Arc<std::sync::Mutex<Watch>>,
}

thread_local! {
    /// The runtime of this thread, kept between calls that ended cleanly: creating one (its
    /// atoms and allocator) is a good part of a small call's time. Each call still gets a
    /// context of its own, so nothing of one call's globals reaches the next.
    static KEPT: std::cell::RefCell<Option<Kept>> = const { std::cell::RefCell::new(None) };
}

fn runtime(
    limits: Limits,
    cancel: &Arc<AtomicBool>,
    interrupted: &Arc<std::sync::Mutex<Option<&'static str>>>,
) -> Result<Kept, String> {
    let watch = Arc::new(std::sync::Mutex::new(Watch {
        cancel: cancel.clone(),
        deadline: Instant::now() + limits.time,
        interrupted: interrupted.clone(),
    }));
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(512 * 1024);
    let watched = watch.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let watch = lock(&watched);
        let why = if watch.cancel.load(Ordering::Relaxed) {
            STOPPED
        } else if Instant::now() >= watch.deadline {
            OUT_OF_TIME
        } else {
            return false;
        };
        *lock(&watch.interrupted) = Some(why);
        true
    })));
    Ok(Kept { runtime, watch })
}

/// This thread's kept runtime watching the call about to run, or a new one.
fn take_runtime(
    limits: Limits,
    cancel: &Arc<AtomicBool>,
    interrupted: &Arc<std::sync::Mutex<Option<&'static str>>>,
) -> Result<Kept, String> {
    match KEPT.with(|kept| kept.borrow_mut().take()) {
        Some(kept) => {
            *lock(&kept.watch) = Watch {
                cancel: cancel.clone(),
                deadline: Instant::now() + limits.time,
                interrupted: interrupted.clone(),
            };
            kept.runtime.set_memory_limit(limits.memory_bytes);
            Ok(kept)
        }
        None => runtime(limits, cancel, interrupted),
    }
}

/// Keeps a runtime for the thread's next call when its call ended cleanly and left nothing
/// behind (no job pending, its garbage collected); one that was interrupted, ran out of
/// memory or failed is dropped.
fn keep_runtime(kept: Kept) {
    if kept.runtime.is_job_pending() {
        return;
    }
    kept.runtime.run_gc();
    KEPT.with(|slot| *slot.borrow_mut() = Some(kept));
}

fn call(
    code: &str,
    inputs: &Json,
    limits: Limits,
    cancel: &Arc<AtomicBool>,
    console: &Arc<std::sync::Mutex<Console>>,
    interrupted: &Arc<std::sync::Mutex<Option<&'static str>>>,
) -> Result<Map<String, Json>, String> {
    let kept = take_runtime(limits, cancel, interrupted)?;
    let context = Context::full(&kept.runtime).map_err(|e| e.to_string())?;
    let memory_mb = limits.memory_bytes / (1024 * 1024);
    let out_of_memory = format!("the code used more than its {memory_mb} MiB of memory");
    let failed = |e: CaughtError<'_>| match e {
        // QuickJS throws null when it cannot even allocate the error.
        CaughtError::Value(v) if v.is_null() => format!("{out_of_memory} (or threw null)"),
        other => {
            let described = describe(other);
            if described.starts_with("InternalError: out of memory") {
                out_of_memory.clone()
            } else {
                described
            }
        }
    };
    let result = context.with(|ctx| {
        install_console(&ctx, console).map_err(|e| e.to_string())?;
        ctx.eval::<(), _>(code).catch(&ctx).map_err(failed)?;
        let main: Value = ctx.globals().get("main").map_err(|e| e.to_string())?;
        let Some(main) = main.as_function() else {
            return Err("the code does not define function main(inputs)".to_string());
        };
        let text = serde_json::to_string(inputs).map_err(|e| e.to_string())?;
        let argument = ctx.json_parse(text).catch(&ctx).map_err(failed)?;
        let mut returned: Value = main.call((argument,)).catch(&ctx).map_err(failed)?;
        if let Some(promise) = returned.as_promise().cloned() {
            returned = promise.finish::<Value>().catch(&ctx).map_err(|e| match e {
                CaughtError::Error(rquickjs::Error::WouldBlock) => {
                    "main's promise never settles (no timers or I/O exist here)".to_string()
                }
                other => failed(other),
            })?;
        }
        if !returned.is_object() || returned.is_array() || returned.is_function() {
            return Err(format!(
                "main must return an object, not {}",
                returned.type_of()
            ));
        }
        let text = ctx
            .json_stringify(returned)
            .catch(&ctx)
            .map_err(failed)?
            .map(|s| s.to_string())
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| "{}".into());
        if text.len() > RESULT_LIMIT {
            return Err(format!(
                "main returned {} bytes of JSON, more than the limit of 1 MiB",
                text.len()
            ));
        }
        match serde_json::from_str(&text) {
            Ok(Json::Object(fields)) => Ok(fields),
            Ok(_) => Err("main must return an object".to_string()),
            Err(e) => Err(format!("main's result is not JSON: {e}")),
        }
    });
    drop(context);
    if result.is_ok() && lock(interrupted).is_none() {
        keep_runtime(kept);
    }
    result
}

fn describe(error: CaughtError<'_>) -> String {
    match error {
        CaughtError::Exception(exception) => {
            let message = exception.message().unwrap_or_default();
            let name = exception
                .get::<_, String>("name")
                .unwrap_or_else(|_| "Error".into());
            let stack = exception.stack().unwrap_or_default();
            let at = stack
                .lines()
                .map(str::trim)
                .find(|line| line.starts_with("at "))
                .map(|line| format!(" ({line})"))
                .unwrap_or_default();
            format!("{name}: {message}{at}")
        }
        CaughtError::Value(value) => {
            let shown = value
                .ctx()
                .json_stringify(value.clone())
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok())
                .unwrap_or_else(|| value.type_of().to_string());
            format!("the code threw {shown}")
        }
        CaughtError::Error(error) => error.to_string(),
    }
}

/// `console.log/info/warn/error/debug`: their arguments (strings as they are, the rest as
/// JSON) joined by spaces, one line a call, up to 64 KiB in all.
fn install_console<'js>(
    ctx: &Ctx<'js>,
    console: &Arc<std::sync::Mutex<Console>>,
) -> rquickjs::Result<()> {
    let object = Object::new(ctx.clone())?;
    for level in ["log", "info", "warn", "error", "debug"] {
        let console = console.clone();
        let write = Function::new(ctx.clone(), move |args: Rest<Value<'js>>| {
            let line = args.0.iter().map(shown).collect::<Vec<_>>().join(" ");
            let mut console = lock(&console);
            if console.full {
                return;
            }
            if console.size + line.len() > CONSOLE_LIMIT {
                console.full = true;
                console
                    .lines
                    .push("… (console output cut at 64 KiB)".to_string());
                return;
            }
            console.size += line.len();
            console.lines.push(line);
        })?;
        object.set(level, write)?;
    }
    ctx.globals().set("console", object)
}

fn shown(value: &Value<'_>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    if let Some(error) = value.as_exception() {
        return error.message().unwrap_or_else(|| "Error".into());
    }
    value
        .ctx()
        .json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| value.type_of().to_string())
}

fn cut(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn limits() -> Limits {
        Limits {
            time: Duration::from_millis(300),
            memory_bytes: 16 * 1024 * 1024,
        }
    }

    fn run(code: &str, inputs: Json) -> Result<Returned, Failed> {
        run_main(code, &inputs, limits(), &Arc::new(AtomicBool::new(false)))
    }

    #[test]
    fn main_computes_from_its_inputs_and_its_console_is_kept() {
        let returned = run(
            "function main(inputs) {
                 console.log('items', inputs.items.length, { first: inputs.items[0] });
                 console.warn('careful');
                 return { total: inputs.items.reduce((a, b) => a + b, 0), name: inputs.name.toUpperCase(), nothing: null };
             }",
            json!({ "items": [1, 2, 3.5], "name": "weft" }),
        )
        .unwrap();
        assert_eq!(
            Json::Object(returned.fields),
            json!({ "total": 6.5, "name": "WEFT", "nothing": null })
        );
        assert_eq!(
            returned.console,
            vec!["items 3 {\"first\":1}".to_string(), "careful".to_string()]
        );
    }

    #[test]
    fn a_loop_without_end_is_interrupted_at_the_time_limit() {
        let started = Instant::now();
        let failed = run("function main() { while (true) {} }", json!({})).unwrap_err();
        assert_eq!(failed.message, "the code ran longer than its time limit");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A loop that catches what interrupts it is interrupted all the same.
        let failed = run(
            "function main() { for (;;) { try { while (true) {} } catch (e) {} } }",
            json!({}),
        )
        .unwrap_err();
        assert_eq!(failed.message, "the code ran longer than its time limit");
    }

    #[test]
    fn a_cancelled_call_stops() {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::Relaxed);
        });
        let long = Limits {
            time: Duration::from_secs(30),
            ..limits()
        };
        let failed = run_main(
            "function main() { while (true) {} }",
            &json!({}),
            long,
            &cancel,
        )
        .unwrap_err();
        stopper.join().unwrap();
        assert_eq!(failed.message, "the run was stopped");
    }

    #[test]
    fn memory_beyond_the_limit_fails_the_call() {
        let failed = run(
            "function main() { const all = []; while (true) { all.push('x'.repeat(100000) + all.length); } }",
            json!({}),
        )
        .unwrap_err();
        assert!(
            failed.message.contains("16 MiB of memory"),
            "{}",
            failed.message
        );
    }

    #[test]
    fn nothing_of_the_host_is_reachable() {
        let returned = run(
            "function main() { return { require: typeof require, process: typeof process,
                 fetch: typeof fetch, std: typeof std, os: typeof os, setTimeout: typeof setTimeout,
                 XMLHttpRequest: typeof XMLHttpRequest, Deno: typeof Deno }; }",
            json!({}),
        )
        .unwrap();
        assert!(
            returned.fields.values().all(|v| v == "undefined"),
            "{:?}",
            returned.fields
        );
        let failed = run("function main() { return require('fs'); }", json!({})).unwrap_err();
        assert!(
            failed
                .message
                .starts_with("ReferenceError: require is not defined"),
            "{}",
            failed.message
        );
        let failed = run("function main() { return process.env; }", json!({})).unwrap_err();
        assert!(
            failed.message.contains("process is not defined"),
            "{}",
            failed.message
        );
        // Dynamic import has no loader to reach.
        let failed = run(
            "async function main() { const fs = await import('fs'); return { fs: typeof fs }; }",
            json!({}),
        )
        .unwrap_err();
        assert!(!failed.message.is_empty());
    }

    #[test]
    fn errors_say_what_and_where() {
        let failed = run(
            "function main() {\n  console.log('before');\n  throw new TypeError('bad input');\n}",
            json!({}),
        )
        .unwrap_err();
        assert!(
            failed.message.starts_with("TypeError: bad input (at main"),
            "{}",
            failed.message
        );
        assert_eq!(failed.console, vec!["before".to_string()]);
        let failed = run("function main() { throw { code: 7 }; }", json!({})).unwrap_err();
        assert_eq!(failed.message, "the code threw {\"code\":7}");
        let failed = run("function main() { return [1, 2]; }", json!({})).unwrap_err();
        assert_eq!(failed.message, "main must return an object, not array");
        let failed = run("function main() { return 3; }", json!({})).unwrap_err();
        assert!(failed.message.starts_with("main must return an object"));
        let failed = run("const x = 1;", json!({})).unwrap_err();
        assert_eq!(
            failed.message,
            "the code does not define function main(inputs)"
        );
        let failed = run(
            "function main() { function f(n) { return f(n + 1) + 1; } return { n: f(0) }; }",
            json!({}),
        )
        .unwrap_err();
        assert!(failed.message.contains("stack"), "{}", failed.message);
    }

    #[test]
    fn a_call_sees_nothing_of_the_calls_before_it_on_its_thread() {
        let first = run(
            "var leaked = 1; globalThis.also = 2; Object.prototype.polluted = 3;
             function main() { return { ok: true }; }",
            json!({}),
        )
        .unwrap();
        assert_eq!(first.fields["ok"], true);
        // The thread's runtime is kept and given to the next call, with a context of its own.
        assert!(KEPT.with(|kept| kept.borrow().is_some()));
        let second = run(
            "function main() { return { leaked: typeof leaked, also: typeof also,
                 polluted: typeof ({}).polluted }; }",
            json!({}),
        )
        .unwrap();
        assert_eq!(
            Json::Object(second.fields),
            json!({ "leaked": "undefined", "also": "undefined", "polluted": "undefined" })
        );
        // A call that leaves a job pending, or one interrupted, does not pass its runtime on.
        run(
            "function main() { Promise.resolve().then(() => { while (true) {} }); return {}; }",
            json!({}),
        )
        .unwrap();
        assert!(KEPT.with(|kept| kept.borrow().is_none()));
        run("function main() { return {}; }", json!({})).unwrap();
        assert!(KEPT.with(|kept| kept.borrow().is_some()));
        run("function main() { while (true) {} }", json!({})).unwrap_err();
        assert!(KEPT.with(|kept| kept.borrow().is_none()));
        let third = run(
            "function main(i) { return { n: i.n + 1 }; }",
            json!({ "n": 1 }),
        )
        .unwrap();
        assert_eq!(third.fields["n"], 2);
    }

    #[test]
    fn a_promise_of_main_is_awaited() {
        let returned = run(
            "async function main(inputs) { const n = await Promise.resolve(inputs.n); return { n: n * 2 }; }",
            json!({ "n": 21 }),
        )
        .unwrap();
        assert_eq!(returned.fields["n"], 42);
        let failed = run(
            "function main() { return new Promise(() => {}); }",
            json!({}),
        )
        .unwrap_err();
        assert!(
            failed.message.contains("never settles"),
            "{}",
            failed.message
        );
    }

    #[test]
    fn console_output_is_bounded() {
        let returned = run(
            "function main() { for (let i = 0; i < 100000; i++) console.log('line ' + i); return {}; }",
            json!({}),
        )
        .unwrap();
        let size: usize = returned.console.iter().map(String::len).sum();
        assert!(size < CONSOLE_LIMIT + 100);
        assert_eq!(
            returned.console.last().unwrap(),
            "… (console output cut at 64 KiB)"
        );
    }

    #[test]
    fn check_finds_syntax_errors_without_running_anything() {
        assert!(check("function main(inputs) { return { a: 1 }; }").is_ok());
        // Top-level code is not run by the check.
        assert!(check("while (true) {}\nfunction main() { return {}; }").is_ok());
        let error = check("function main(inputs { return {}; }").unwrap_err();
        assert!(error.starts_with("SyntaxError"), "{error}");
        assert_eq!(
            check("const x = 1;").unwrap_err(),
            "the code must define function main(inputs)"
        );
    }
}
