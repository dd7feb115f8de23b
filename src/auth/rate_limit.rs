//! Attempt counters of the anonymous entry points (login, register, refresh, password
//! reset), per email and per client address, kept in Redis so that every instance shares
//! them (in process memory with the in-process bus).
//!
//! Each attempt takes its place atomically (one Lua script: INCR, and the window's expiry on
//! the first), so concurrent attempts cannot all pass a check made before any of them is
//! counted; every call counts, so 40 aliases of one mutation in a document are 40
//! attempts. When Redis does not answer, attempts are let through and a warning is logged:
//! an outage of the bus must not lock every user out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::realtime::Broker;

/// Failed logins allowed per window for one email and one address before RATE_LIMITED.
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

/// An entry point's allowance: attempts per email and per address within a window.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub per_email: Option<u32>,
    pub per_ip: Option<u32>,
    pub window: Duration,
}

/// Accounts created from one address.
pub const REGISTER: Rule = Rule {
    name: "register",
    per_email: None,
    per_ip: Some(20),
    window: Duration::from_secs(3600),
};
/// Refresh tokens exchanged from one address (a browser refreshes every 15 minutes).
pub const REFRESH: Rule = Rule {
    name: "refresh",
    per_email: None,
    per_ip: Some(300),
    window: Duration::from_secs(15 * 60),
};
/// Reset mails asked for one email, and from one address.
pub const RESET_REQUEST: Rule = Rule {
    name: "reset-request",
    per_email: Some(3),
    per_ip: Some(20),
    window: Duration::from_secs(3600),
};
/// Reset tokens tried from one address.
pub const RESET: Rule = Rule {
    name: "reset",
    per_email: None,
    per_ip: Some(20),
    window: Duration::from_secs(15 * 60),
};

/// Takes a place atomically: the count after this attempt; the window starts with the first.
const TAKE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

pub struct RateLimiter {
    broker: Broker,
    prefix: String,
    /// The login rule (configurable, for tests and deployments).
    login: Rule,
    memory: Mutex<HashMap<String, (u32, Instant)>>,
}

impl RateLimiter {
    pub fn new(broker: Broker, prefix: &str, limits: Limits) -> RateLimiter {
        RateLimiter {
            broker,
            prefix: prefix.to_string(),
            login: Rule {
                name: "login",
                per_email: Some(limits.per_email),
                per_ip: Some(limits.per_ip),
                window: limits.window,
            },
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The rule of logins.
    pub fn login_rule(&self) -> Rule {
        self.login
    }

    /// The counters an attempt counts against: (key, allowance, whether it is the email's).
    fn keys(&self, rule: Rule, email: Option<&str>, ip: Option<&str>) -> Vec<(String, u32, bool)> {
        let mut keys = Vec::new();
        if let (Some(limit), Some(email)) = (rule.per_email, email) {
            // Emails are not written to Redis in clear.
            let email = hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()));
            keys.push((
                format!("{}limit:{}:email:{email}", self.prefix, rule.name),
                limit,
                true,
            ));
        }
        if let (Some(limit), Some(ip)) = (rule.per_ip, ip) {
            keys.push((
                format!("{}limit:{}:ip:{ip}", self.prefix, rule.name),
                limit,
                false,
            ));
        }
        keys
    }

    /// Counts one attempt against the email and the address; RATE_LIMITED when either has
    /// used up its allowance (the attempt is counted all the same).
    pub async fn attempt(
        &self,
        rule: Rule,
        email: Option<&str>,
        ip: Option<&str>,
    ) -> AppResult<()> {
        let mut over = false;
        for (key, limit, _) in self.keys(rule, email, ip) {
            if self.take(&key, rule.window).await > limit {
                over = true;
            }
        }
        if over {
            Err(AppError::RateLimited)
        } else {
            Ok(())
        }
    }

    /// Gives back an attempt that succeeded: the email's count is forgotten, the address's
    /// lowered by one (only failures should use up an allowance).
    pub async fn succeeded(&self, rule: Rule, email: Option<&str>, ip: Option<&str>) {
        for (key, _, is_email) in self.keys(rule, email, ip) {
            match &self.broker {
                Broker::Redis { commands, .. } => {
                    let mut conn = commands.clone();
                    let command = if is_email { "DEL" } else { "DECR" };
                    if let Err(e) = redis::cmd(command)
                        .arg(&key)
                        .query_async::<()>(&mut conn)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot give back a rate-limit attempt in Redis");
                    }
                }
                Broker::Memory => {
                    if let Ok(mut map) = self.memory.lock() {
                        if is_email {
                            map.remove(&key);
                        } else if let Some(entry) = map.get_mut(&key) {
                            entry.0 = entry.0.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }

    /// Takes a place under `key`; the count including this attempt (0 when Redis does not
    /// answer: not limited).
    async fn take(&self, key: &str, window: Duration) -> u32 {
        match &self.broker {
            Broker::Redis { commands, .. } => {
                let mut conn = commands.clone();
                let counted = redis::Script::new(TAKE)
                    .key(key)
                    .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
                    .invoke_async::<u32>(&mut conn)
                    .await;
                match counted {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "rate limits unavailable: Redis does not answer");
                        0
                    }
                }
            }
            Broker::Memory => {
                let Ok(mut map) = self.memory.lock() else {
                    return 0;
                };
                let now = Instant::now();
                let entry = map.entry(key.to_string()).or_insert((0, now + window));
                if entry.1 <= now {
                    *entry = (0, now + window);
                }
                entry.0 += 1;
                entry.0
            }
        }
    }
}
