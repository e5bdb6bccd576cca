//! Extractors for what every handler repeats (`FromRequest`): a POST to a step of a live
//! self-service flow with its CSRF-checked form ([`Posted`]), and the console user the gate
//! admitted, with or without a CSRF-checked form ([`Member`], [`MemberForm`]). A refusal is a
//! [`WebError`], rendered like every other.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::console::{self, Console, ConsoleUser};
use crate::error::WebError;
use crate::flow::Step;
use crate::portal::Portal;

/// A form that carries the CSRF token of the session it was rendered for (field `csrf`).
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// Implements [`WithCsrf`] for forms whose token is their `csrf` field.
#[macro_export]
macro_rules! with_csrf {
    ($($form:ty),* $(,)?) => {
        $(impl $crate::extract::WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

/// A boxed, not-`Send` future, as actix extractors return.
type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

fn portal_of(req: &HttpRequest) -> Result<web::Data<Portal>, WebError> {
    req.app_data::<web::Data<Portal>>()
        .cloned()
        .ok_or(WebError::Forbidden)
}

/// A POST to a step of a live self-service flow: the flow loaded, the form's CSRF token checked
/// against it. Refused with [`WebError::Expired`] (no live flow), [`WebError::Store`] or
/// [`WebError::Csrf`].
pub struct Posted<F> {
    pub step: Step,
    pub form: F,
}

impl<F: WithCsrf + DeserializeOwned + 'static> FromRequest for Posted<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<F>::from_request(&req, payload);
        Box::pin(async move {
            let form = form.await?.into_inner();
            let portal = portal_of(&req)?;
            let step = Step::post(&portal, &req, form.csrf()).await?;
            Ok(Posted { step, form })
        })
    }
}

/// Which console a route belongs to.
pub trait ConsoleKind {
    const CONSOLE: Console;
}

/// The admin console's routes.
pub struct AdminConsole;
/// The helpdesk console's routes.
pub struct HelpdeskConsole;

impl ConsoleKind for AdminConsole {
    const CONSOLE: Console = Console::Admin;
}

impl ConsoleKind for HelpdeskConsole {
    const CONSOLE: Console = Console::Helpdesk;
}

/// The signed-in user the console gate admitted to console `C` for this request; anything else
/// is refused (deny by default, even if a route was registered outside the gate's paths).
pub struct Member<C> {
    pub user: ConsoleUser,
    console: PhantomData<C>,
}

impl<C> std::ops::Deref for Member<C> {
    type Target = ConsoleUser;

    fn deref(&self) -> &ConsoleUser {
        &self.user
    }
}

fn member<C: ConsoleKind>(req: &HttpRequest) -> Result<Member<C>, WebError> {
    match console::user(req) {
        Some(user) if user.console == C::CONSOLE => Ok(Member {
            user,
            console: PhantomData,
        }),
        _ => Err(WebError::Forbidden),
    }
}

impl<C: ConsoleKind> FromRequest for Member<C> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(member(req).map_err(Into::into))
    }
}

/// A console POST: the admitted user of console `C` and the form, its CSRF token checked
/// against the user's console session.
pub struct MemberForm<C, F> {
    pub member: Member<C>,
    pub form: F,
}

impl<C: ConsoleKind + 'static, F: WithCsrf + DeserializeOwned + 'static> FromRequest
    for MemberForm<C, F>
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<F>::from_request(&req, payload);
        Box::pin(async move {
            let member = member::<C>(&req)?;
            let form = form.await?.into_inner();
            let portal = portal_of(&req)?;
            if !member.check_csrf(&portal, &req, form.csrf()) {
                return Err(WebError::Csrf(member.lang).into());
            }
            Ok(MemberForm { member, form })
        })
    }
}
