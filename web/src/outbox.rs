//! The demo's outbox: an email transport and SMS provider that deliver into memory, and the
//! `/demo/outbox` page that shows what would have been sent (plus the seeded users' current
//! authenticator codes). Never part of a real deployment: only `latchkey demo` installs it.

use std::sync::Mutex;

use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_notify::{
    BoxFuture, DeliveryError, EmailTransport, PhoneNumber, RenderedEmail, SmsProvider,
};
use latchkey_types::{EmailAddress, Secret};
use latchkey_verify::TotpSeed;
use serde::Serialize;

use crate::portal::Portal;

/// One delivered message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub at: String,
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Messages "sent" in demo mode, and the demo users' authenticator seeds.
#[derive(Default)]
pub struct Outbox {
    messages: Mutex<Vec<Message>>,
    seeds: Mutex<Vec<(String, TotpSeed)>>,
}

impl Outbox {
    fn push(&self, m: Message) {
        if let Ok(mut v) = self.messages.lock() {
            v.push(m);
        }
    }

    /// Newest first.
    pub fn messages(&self) -> Vec<Message> {
        self.messages
            .lock()
            .map(|v| v.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Remembers a seeded user's TOTP seed so the outbox page can show the current code.
    pub fn add_seed(&self, upn: &str, seed: TotpSeed) {
        if let Ok(mut v) = self.seeds.lock() {
            v.push((upn.to_string(), seed));
        }
    }

    fn now_text() -> String {
        latchkey_verify::Clock::now(&latchkey_verify::SystemClock)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

/// Deliveries go to an `Arc<Outbox>`; the transports are thin handles on it.
pub struct OutboxTransport(pub std::sync::Arc<Outbox>);

impl EmailTransport for OutboxTransport {
    fn send<'a>(
        &'a self,
        to: &'a EmailAddress,
        email: &'a RenderedEmail,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.0.push(Message {
            at: Outbox::now_text(),
            channel: "email",
            to: to.to_string(),
            subject: email.subject.clone(),
            body: email.text.expose().clone(),
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

impl SmsProvider for OutboxTransport {
    fn name(&self) -> &'static str {
        "demo-outbox"
    }

    fn send<'a>(
        &'a self,
        to: &'a PhoneNumber,
        body: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.0.push(Message {
            at: Outbox::now_text(),
            channel: "sms",
            to: to.as_str().to_string(),
            subject: String::new(),
            body: body.expose().clone(),
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/outbox", web::get().to(page));
}

#[derive(Serialize)]
struct Code {
    upn: String,
    code: String,
}

async fn page(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let Some(outbox) = portal.part::<Outbox>() else {
        return portal.error_page(
            &req,
            crate::flow::lang(&req, None),
            actix_web::http::StatusCode::NOT_FOUND,
            "error_not_found",
        );
    };
    let now = portal.services.clock.now();
    let codes: Vec<Code> = outbox
        .seeds
        .lock()
        .map(|v| {
            v.iter()
                .filter_map(|(upn, seed)| {
                    let code = portal.services.totp.code_at(seed, now).ok()?;
                    Some(Code {
                        upn: upn.clone(),
                        code: code.expose().clone(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    portal.render(
        &req,
        "outbox.html",
        &serde_json::json!({ "messages": outbox.messages(), "codes": codes }),
    )
}
