//! Failed-login counters, per email and per client address, kept in Redis so that every
//! instance shares them (in process memory with the in-process bus).
//!
//! When Redis does not answer, logins are let through unlimited and a warning is logged:
//! an outage of the bus must not lock every user out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::realtime::Broker;

/// Failures allowed per window for one key before RATE_LIMITED.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_email: 5,
            per_ip: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

pub struct LoginLimiter {
    broker: Broker,
    prefix: String,
    limits: Limits,
    memory: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(broker: Broker, prefix: &str, limits: Limits) -> LoginLimiter {
        LoginLimiter {
            broker,
            prefix: prefix.to_string(),
            limits,
            memory: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self, email: &str, ip: Option<&str>) -> Vec<(String, u32)> {
        // Emails are not written to Redis in clear.
        let email = hex::encode(Sha256::digest(email.to_lowercase().as_bytes()));
        let mut keys = vec![(
            format!("{}login-fail:email:{email}", self.prefix),
            self.limits.per_email,
        )];
        if let Some(ip) = ip {
            keys.push((
                format!("{}login-fail:ip:{ip}", self.prefix),
                self.limits.per_ip,
            ));
        }
        keys
    }

    /// RATE_LIMITED when the email or the address has used up its failures.
    pub async fn check(&self, email: &str, ip: Option<&str>) -> AppResult<()> {
        for (key, limit) in self.keys(email, ip) {
            if self.count(&key).await >= limit {
                return Err(AppError::RateLimited);
            }
        }
        Ok(())
    }

    /// Counts one failure against the email and the address.
    pub async fn record_failure(&self, email: &str, ip: Option<&str>) {
        for (key, _) in self.keys(email, ip) {
            self.increment(&key).await;
        }
    }

    /// Forgets the email's failures after a successful login.
    pub async fn reset(&self, email: &str) {
        if let Some((key, _)) = self.keys(email, None).into_iter().next() {
            match &self.broker {
                Broker::Redis { commands, .. } => {
                    let mut conn = commands.clone();
                    if let Err(e) = redis::cmd("DEL")
                        .arg(&key)
                        .query_async::<()>(&mut conn)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot reset a login counter in Redis");
                    }
                }
                Broker::Memory => {
                    if let Ok(mut map) = self.memory.lock() {
                        map.remove(&key);
                    }
                }
            }
        }
    }

    async fn count(&self, key: &str) -> u32 {
        match &self.broker {
            Broker::Redis { commands, .. } => {
                let mut conn = commands.clone();
                match redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<u32>>(&mut conn)
                    .await
                {
                    Ok(n) => n.unwrap_or(0),
                    Err(e) => {
                        tracing::warn!(error = %e, "login rate limit unavailable: Redis does not answer");
                        0
                    }
                }
            }
            Broker::Memory => {
                let Ok(map) = self.memory.lock() else {
                    return 0;
                };
                map.get(key)
                    .filter(|(_, expires)| *expires > Instant::now())
                    .map_or(0, |(n, _)| *n)
            }
        }
    }

    async fn increment(&self, key: &str) {
        match &self.broker {
            Broker::Redis { commands, .. } => {
                let mut conn = commands.clone();
                let result = redis::pipe()
                    .cmd("INCR")
                    .arg(key)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(key)
                    .arg(self.limits.window.as_secs())
                    .arg("NX")
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot count a failed login in Redis");
                }
            }
            Broker::Memory => {
                let Ok(mut map) = self.memory.lock() else {
                    return;
                };
                let now = Instant::now();
                let entry = map
                    .entry(key.to_string())
                    .or_insert((0, now + self.limits.window));
                if entry.1 <= now {
                    *entry = (0, now + self.limits.window);
                }
                entry.0 += 1;
            }
        }
    }
}
