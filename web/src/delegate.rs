//! `latchkey delegate`: obtains the delegated credential the portal needs for synced users.
//!
//! Microsoft allows `resetPassword` (the call that writes a new password back to on-premises AD)
//! only with a delegated token. An admin holding Authentication Administrator (or Privileged
//! Authentication Administrator) signs in once through the authorization code flow with PKCE and
//! a loopback redirect (`http://localhost:PORT/`, a listener this command starts); the refresh
//! token is kept encrypted with the `[store] key_file` key in `[delegated] token_file` (0600) and
//! replaced atomically whenever the token endpoint rotates it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use latchkey_graph::delegated::PendingAuthorization;
use latchkey_graph::{GraphClient, RotateHook};
use latchkey_store::{Cipher, EncryptionKey};
use latchkey_types::Secret;
use url::Url;

use crate::config::Settings;

/// How long the command waits for the admin to sign in.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);

/// The scopes of the delegated credential: a refresh token, and the authentication-method
/// permission `resetPassword` needs.
pub fn scopes() -> Vec<String> {
    vec![
        "offline_access".into(),
        "https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All".into(),
    ]
}

/// The encrypted refresh-token file of `[delegated] token_file`.
pub struct TokenFile {
    path: PathBuf,
    cipher: Cipher,
    aad: Vec<u8>,
}

impl TokenFile {
    /// The token file of this configuration, or `None` without a `[delegated]` table.
    pub fn of(settings: &Settings) -> anyhow::Result<Option<TokenFile>> {
        let Some(d) = &settings.delegated else {
            return Ok(None);
        };
        let key = EncryptionKey::load_or_create(&settings.store.key_file).with_context(|| {
            format!(
                "key `store.key_file` ({})",
                settings.store.key_file.display()
            )
        })?;
        // The ciphertext is bound to its purpose and to this tenant and app: it cannot be
        // swapped with another secret sealed by the same key.
        let mut aad = b"latchkey/delegated-refresh-token/v1".to_vec();
        for part in [
            settings.entra.tenant_id.trim(),
            settings.entra.client_id.trim(),
        ] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        Ok(Some(TokenFile {
            path: d.token_file.clone(),
            cipher: Cipher::new(&key),
            aad,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encrypts and writes `refresh_token`: a 0600 temporary file in the same folder, synced,
    /// then renamed over the old one (readers see the old or the new token, never half of one).
    pub fn save(&self, refresh_token: &Secret<String>) -> anyhow::Result<()> {
        let blob = self
            .cipher
            .seal(
                refresh_token.expose().as_bytes(),
                &self.aad,
                "delegated refresh token",
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(blob)
        );
        let name = self
            .path
            .file_name()
            .context("key `delegated.token_file` names no file")?
            .to_string_lossy()
            .into_owned();
        let tmp = self
            .path
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        // A leftover of an earlier attempt by this process id; usually there is none.
        if let Err(e) = std::fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(error = %e, "cannot remove a leftover temporary token file");
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = || -> std::io::Result<()> {
            let mut f = options.open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            if let Err(cleanup) = std::fs::remove_file(&tmp) {
                tracing::debug!(error = %cleanup, "cannot remove a temporary token file");
            }
            anyhow::anyhow!(
                "key `delegated.token_file`: cannot write {}: {e}",
                self.path.display()
            )
        })
    }

    /// Reads and decrypts the refresh token.
    pub fn load(&self) -> anyhow::Result<Secret<String>> {
        let text = std::fs::read_to_string(&self.path).with_context(|| {
            format!(
                "key `delegated.token_file`: cannot read {} (run `latchkey delegate --config FILE`)",
                self.path.display()
            )
        })?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| {
                self.cipher
                    .open(&b, &self.aad, "delegated refresh token")
                    .ok()
            })
            .with_context(|| {
                format!(
                    "key `delegated.token_file`: {} cannot be decrypted with `store.key_file` (run `latchkey delegate` again)",
                    self.path.display()
                )
            })?;
        let token = String::from_utf8(blob.expose().clone())
            .context("key `delegated.token_file`: not a token")?;
        Ok(Secret::new(token))
    }
}

/// The delegated Graph client of this configuration: `None` without `[delegated]`, and `None`
/// while its token file does not exist yet (nobody has signed in for it; said once at WARN).
/// Rotated refresh tokens replace the stored one. `latchkey serve` and the admin console's
/// delegated sign-in both build it here.
pub fn client(settings: &Settings) -> anyhow::Result<Option<GraphClient>> {
    let Some(file) = TokenFile::of(settings)? else {
        return Ok(None);
    };
    // Only a file known to be absent is "not set up"; any other error surfaces from `load`.
    if matches!(file.path().try_exists(), Ok(false)) {
        tracing::warn!(
            file = %file.path().display(),
            "the delegated credential is not set up yet: synced users cannot reset until an admin \
             signs in for it on the admin console's connection page (/admin/connection) or runs \
             `latchkey delegate --config FILE`"
        );
        return Ok(None);
    }
    let refresh_token = file.load()?;
    let file = Arc::new(file);
    let hook: RotateHook = Arc::new(move |rt: Secret<String>| {
        if let Err(e) = file.save(&rt) {
            tracing::error!(error = %e, "cannot store the rotated delegated refresh token");
        }
    });
    let client = GraphClient::with_delegated(
        crate::entra::graph_config(settings)?,
        refresh_token,
        scopes(),
        Some(hook),
    )
    .map_err(|e| anyhow::anyhow!("[delegated]: {e}"))?;
    Ok(Some(client))
}

/// Runs the sign-in: listens on `127.0.0.1:port` (0: any free port), gives `show` the authorize
/// URL to open, waits for the redirect, redeems the code and stores the refresh token.
pub async fn obtain(
    settings: &Settings,
    port: u16,
    show: impl FnOnce(&Url),
) -> anyhow::Result<PathBuf> {
    let file = TokenFile::of(settings)?
        .context("no [delegated] table: set `delegated.token_file` in the configuration")?;
    let config = crate::entra::graph_config(settings)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let port = listener.local_addr()?.port();
    let pending = PendingAuthorization::new(format!("http://localhost:{port}/"), scopes())?;
    let url = pending
        .authorize_url(&config)
        .map_err(|e| anyhow::anyhow!("[entra]: {e}"))?;
    let state = pending.state.clone();
    let waiter = std::thread::spawn(move || wait_for_code(listener, &state));
    show(&url);
    let code = loop {
        if waiter.is_finished() {
            break waiter
                .join()
                .map_err(|_| anyhow::anyhow!("the loopback listener failed"))??;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tokens = pending
        .redeem(&config, &code)
        .await
        .map_err(|e| anyhow::anyhow!("cannot redeem the authorization code: {e}"))?;
    let refresh_token = tokens
        .refresh_token
        .clone()
        .context("the token endpoint returned no refresh token (was offline_access granted?)")?;
    if !tokens
        .scopes()
        .iter()
        .any(|s| s.ends_with("UserAuthenticationMethod.ReadWrite.All"))
    {
        anyhow::bail!(
            "UserAuthenticationMethod.ReadWrite.All was not granted (granted: {})",
            tokens.scope
        );
    }
    file.save(&refresh_token)?;
    Ok(file.path().to_path_buf())
}

/// Accepts connections on the loopback listener until one carries the authorization response.
fn wait_for_code(listener: TcpListener, state: &str) -> anyhow::Result<Secret<String>> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + SIGN_IN_TIMEOUT;
    loop {
        if Instant::now() > deadline {
            anyhow::bail!("nobody signed in within {} s", SIGN_IN_TIMEOUT.as_secs());
        }
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/");
        let Ok(url) = Url::parse(&format!("http://localhost{target}")) else {
            respond(&mut stream, 400, "Bad request.");
            continue;
        };
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        if let Some(error) = q.get("error") {
            respond(
                &mut stream,
                400,
                "Sign-in failed. See the terminal for details.",
            );
            let description: String = q
                .get("error_description")
                .map(String::as_str)
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            anyhow::bail!("the sign-in returned {error}: {description}");
        }
        let (Some(code), Some(returned)) = (q.get("code"), q.get("state")) else {
            respond(&mut stream, 404, "Not found.");
            continue;
        };
        let same = returned.len() == state.len()
            && returned
                .bytes()
                .zip(state.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            respond(&mut stream, 400, "Unexpected state; sign-in refused.");
            anyhow::bail!("the redirect carried another state (not this sign-in); try again");
        }
        respond(
            &mut stream,
            200,
            "Latchkey received the authorization. You can close this tab and return to the terminal.",
        );
        return Ok(Secret::new(code.clone()));
    }
}

fn respond(stream: &mut std::net::TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let written = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .and_then(|()| stream.flush());
    // The browser that made the redirect may have gone; the command goes on either way.
    if let Err(e) = written {
        tracing::debug!(error = %e, "cannot answer the sign-in redirect");
    }
}

/// `latchkey delegate --config FILE [--port PORT]`.
pub async fn run(config: &Path, port: u16) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let path = obtain(&settings, port, |url| {
        println!("Sign in as an Authentication Administrator (or Privileged Authentication");
        println!("Administrator) by opening this address in a browser on this machine:");
        println!();
        println!("  {url}");
        println!();
        println!("Waiting for the sign-in (10 minutes at most)...");
    })
    .await?;
    println!(
        "Stored the delegated credential, encrypted, in {}.",
        path.display()
    );
    println!("Restart `latchkey serve` so synced users can reset their password with writeback.");
    Ok(ExitCode::SUCCESS)
}
