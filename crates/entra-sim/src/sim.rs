//! [`Sim`]: a running simulated tenant on a loopback port.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::app::Shared;
use crate::clock::Clock;
use crate::faults::Fault;
use crate::fixture::{EMBEDDED_SIGNING_KEY, Fixture};
use crate::recording::RecordedRequest;
use crate::state::State;
use crate::state::handle::TenantHandle;
use crate::state::signin::SignInOutcome;
use crate::tokens::Keys;
use crate::{control, graph, middleware, oauth};

pub struct Sim {
    shared: Arc<Shared>,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl Sim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(fixture: Fixture) -> std::io::Result<Sim> {
        Self::start_on(fixture, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(mut fixture: Fixture, addr: SocketAddr) -> std::io::Result<Sim> {
        fixture.validate().map_err(invalid)?;
        let clock = Clock::system();
        let state = State::build(&fixture, clock.now()).map_err(invalid)?;
        let keys = Keys::from_pem(
            fixture
                .tenant
                .signing_key
                .as_deref()
                .unwrap_or(EMBEDDED_SIGNING_KEY),
        )
        .map_err(invalid)?;
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let batch_client = graph::batch::part_client().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared::new(state, keys, clock, base_url, batch_client));
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(middleware::record_and_fault))
                .configure(control::configure)
                .configure(graph::configure)
                .configure(oauth::configure)
        })
        // One worker: every handler is short and non-blocking, and a second thread only added
        // wake-ups and allocator arenas to the process it shares (the load bench: 15 % less
        // simulator CPU per flow).
        .workers(1)
        .disable_signals()
        .on_connect(middleware::on_connect)
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        tracing::info!(url = %shared.base_url, "simulated Entra tenant listening");
        Ok(Sim {
            shared,
            handle,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`: use it as the authority host.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `base_url + "/v1.0"`.
    pub fn graph_base_url(&self) -> String {
        self.shared.graph_base()
    }

    pub fn tenant_id(&self) -> String {
        self.shared.state().tenant_id.to_string()
    }

    /// Every request served so far (except `/_sim/` calls), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// `true`: record only method, path, query and status of later requests (load runs that
    /// count requests by kind); `false` (the default): headers and bodies too.
    pub fn record_summary_only(&self, on: bool) {
        self.shared.recorder.set_summary_only(on);
    }

    pub fn add_fault(&self, fault: Fault) {
        self.shared.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    pub fn tenant(&self) -> TenantHandle {
        TenantHandle {
            shared: self.shared.clone(),
        }
    }

    /// A simulated interactive sign-in (smart lockout applies), as the sign-in page does it.
    pub fn sign_in(&self, upn: &str, password: &str) -> SignInOutcome {
        let now = self.shared.clock.now();
        self.shared.state().sign_in(upn, password, now)
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
