//! Starting the binary against services that do not answer: one clear line and a non-zero
//! exit, never a panic.

use std::process::Command;

fn run_weft(envs: &[(&str, &str)]) -> (bool, String) {
    let data_dir = std::env::temp_dir().join(format!("weft-startup-{}", uuid::Uuid::new_v4()));
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .envs(envs.iter().copied())
        .env("WEFT_DATA_DIR", &data_dir)
        .env("WEFT_BIND", "127.0.0.1:0")
        .output()
        .expect("run weft");
    let _ = std::fs::remove_dir_all(data_dir);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unreachable_postgres_is_one_clear_line_and_a_failure() {
    let (ok, stderr) = run_weft(&[("DATABASE_URL", "postgres://weft:s3cret@127.0.0.1:1/weft")]);
    assert!(!ok);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("cannot reach PostgreSQL at postgres://weft:***@127.0.0.1:1/weft"),
        "{stderr}"
    );
    assert!(line.contains("DATABASE_URL"), "{stderr}");
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn unreachable_redis_is_one_clear_line_and_a_failure() {
    let db = crate::harness::TestDb::new();
    let (ok, stderr) = run_weft(&[
        ("DATABASE_URL", &db.url),
        ("REDIS_URL", "redis://127.0.0.1:1"),
    ]);
    assert!(!ok);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        line.contains("cannot reach Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(line.contains("REDIS_URL=memory"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
