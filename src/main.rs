//! The `weft` command: `weft` or `weft serve` runs the server, `weft migrate` applies the
//! migrations, `weft schema` prints the SDL.

use std::process::ExitCode;

use weft::app::{App, StartupError};
use weft::config::{Config, redact_url};
use weft::{db, graphql, server, telemetry};

/// The server allocates many small, short-lived values per request (GraphQL values, rows,
/// futures); mimalloc serves them with less time and contention than the system allocator
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: weft [serve [--no-demo] | migrate | schema]

  serve    run the server (the default); on an empty database it seeds a demo
           application and prints how to try it, unless --no-demo (or WEFT_DEMO=false)
  migrate  create the database if needed and apply pending migrations
  schema   print the GraphQL SDL

Configuration comes from the environment: see README.md.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_demo = args.iter().any(|a| a == "--no-demo");
    let command = args
        .iter()
        .map(String::as_str)
        .find(|a| !a.starts_with("--"))
        .unwrap_or("serve");
    match command {
        "schema" => {
            print!("{}", graphql::sdl());
            ExitCode::SUCCESS
        }
        "serve" | "migrate" => {
            telemetry::init();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = if command == "serve" {
                runtime.block_on(serve(no_demo))
            } else {
                runtime.block_on(migrate())
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("error: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(no_demo: bool) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    if no_demo {
        config.engine.demo = false;
    }
    let bind = config.bind;
    let app = App::start(config).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (WEFT_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "listening");
    println!("Weft is serving GraphQL at http://{addr}/graphql");
    println!("GraphiQL: http://{addr}/graphiql");
    if app.config.engine.demo {
        match weft::demo::seed_if_empty(&app).await {
            Ok(Some(demo)) => println!(
                "{}",
                weft::demo::instructions(&demo, &format!("http://{addr}"))
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = ?e, "cannot seed the demo"),
        }
    }
    server::serve(app, listener, server::shutdown_signal())
        .await
        .map_err(|e| format!("server stopped: {e}"))
}

async fn migrate() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let url = &config.database_url;
    let postgres = |detail: String| {
        StartupError::Postgres {
            url: redact_url(url),
            detail,
        }
        .to_string()
    };
    if db::migrate::ensure_database(url)
        .await
        .map_err(|e| postgres(e.to_string()))?
    {
        println!("created database");
    }
    let applied = db::migrate::run_pending(url)
        .await
        .map_err(|e| postgres(e.to_string()))?;
    println!("applied {applied} migration(s)");
    Ok(())
}
