//! Outgoing mail: SMTP when `WEFT_SMTP_URL` is set, otherwise the message goes to the
//! server log at INFO (for development; documented in README.md).

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
    Log,
}

impl Mailer {
    /// From `WEFT_SMTP_URL` (lettre's URL form, e.g. `smtp://user:pass@host:587?tls=required`)
    /// and `WEFT_MAIL_FROM`.
    pub fn from_config(smtp_url: Option<&str>, from: &str) -> Result<Mailer, String> {
        let Some(url) = smtp_url else {
            return Ok(Mailer::Log);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("WEFT_SMTP_URL is not a valid SMTP URL: {e}"))?
            .build();
        let transport = Box::new(transport);
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("WEFT_MAIL_FROM is not a valid mailbox: {e}"))?;
        Ok(Mailer::Smtp { transport, from })
    }

    /// Sends a message; failures are logged, never shown to the requester.
    pub async fn send(&self, to: &str, subject: &str, body: String) {
        match self {
            Mailer::Log => {
                tracing::info!(
                    to,
                    subject,
                    "mail (no WEFT_SMTP_URL set, logged instead):\n{body}"
                );
            }
            Mailer::Smtp { transport, from } => {
                let message = to
                    .parse::<Mailbox>()
                    .map_err(|e| e.to_string())
                    .and_then(|to| {
                        Message::builder()
                            .from(from.clone())
                            .to(to)
                            .subject(subject)
                            .body(body)
                            .map_err(|e| e.to_string())
                    });
                let result = match message {
                    Ok(message) => transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, subject, "cannot send mail");
                }
            }
        }
    }
}
