//! Windows only: `latchkey-gateway run --service --config FILE` as a Windows service. Only the
//! service glue lives here (register the control handler, report Running/Stopped, turn Stop and
//! Shutdown into the agent's stop signal); the agent is the same as in the foreground.
//! Logging goes to the Application Event Log under the source "Latchkey Gateway" (tracing
//! events are forwarded through the `log` facade to the `eventlog` crate).
//!
//! Installed by the MSI (installer/windows/gateway.wxs) as `LatchkeyGateway`, running as the
//! virtual account `NT SERVICE\LatchkeyGateway`; by hand with `sc.exe` as
//! installer/windows/README.md shows. tests/windows/msi.sh starts and stops it under Wine.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

const SERVICE_NAME: &str = "LatchkeyGateway";
const EVENT_SOURCE: &str = "Latchkey Gateway";

/// `service_main` is called by Windows through a plain function pointer: the configuration path
/// is handed over here.
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands the process to the service control manager; returns when the service has stopped.
pub fn run(config: PathBuf) -> Result<(), String> {
    let _ = eventlog::init(EVENT_SOURCE, log::Level::Info);
    let _ = CONFIG.set(config);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| e.to_string())
}

fn service_main(_arguments: Vec<OsString>) {
    // run_service logs its own failure (once) to the Event Log.
    let _ = run_service();
}

fn status(state: ServiceState, accept: ServiceControlAccept, code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(code),
        checkpoint: 0,
        wait_hint: Duration::from_secs(30),
        process_id: None,
    }
}

fn run_service() -> Result<(), String> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let signal = Arc::clone(&stop);
    let handler = move |control| -> ServiceControlHandlerResult {
        match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                // notify_one keeps a permit if the agent is not waiting at this instant.
                signal.notify_one();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle =
        service_control_handler::register(SERVICE_NAME, handler).map_err(|e| e.to_string())?;
    // Start pending until the configuration has been read: a service whose configuration is
    // wrong never shows as running, and `sc start` reports it as failed to start.
    handle
        .set_service_status(status(
            ServiceState::StartPending,
            ServiceControlAccept::empty(),
            0,
        ))
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let path = CONFIG.get().ok_or("no configuration path")?;
        let cfg = crate::config::load_agent(path).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let running = ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN;
        handle
            .set_service_status(status(ServiceState::Running, running, 0))
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(crate::agent::run(cfg, async move { stop.notified().await }))
            .map_err(|e| e.to_string())
    })();
    if let Err(e) = &result {
        log::error!("latchkey-gateway service stopped: {e}");
    }
    let code = u32::from(result.is_err());
    handle
        .set_service_status(status(
            ServiceState::Stopped,
            ServiceControlAccept::empty(),
            code,
        ))
        .map_err(|e| e.to_string())?;
    result
}
