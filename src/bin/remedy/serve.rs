//! `remedy serve`: the service (callbacks, gateway, health, metrics, the web view) from a configuration file and
//! the environment; `--demo` runs it against a simulated LightFlow over loopback HTTP, and prints an operator's
//! token for the web view (a sign-in link that carries it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use lightflow_remedy::lightflow::{CallbackKey, TokenSource};
use lightflow_remedy::serve::{BuildOptions, Environment, Secrets, ServeConfig, Service, demo};

use crate::common;

/// `remedy serve` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The configuration file (TOML); without one, the defaults and the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to listen (over the file's `listen`), e.g. 127.0.0.1:0 for any free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The store (over the file's `store`), e.g. sqlite://remedy.db or postgres://...
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Run against a simulated LightFlow on loopback, with assets created through the gateway, one a second.
    #[arg(long)]
    demo: bool,
    /// With --demo: how many assets the demo creates.
    #[arg(long, default_value_t = 60, value_name = "N")]
    demo_assets: usize,
    /// How long calls under way may take to finish at shutdown.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    shutdown_deadline: Duration,
}

/// The demo's secrets: made up for the run, printed so that the user can use them.
struct DemoSecrets {
    gateway: String,
    metrics: String,
    operator: String,
}

impl Secrets for DemoSecrets {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "REMEDY_GATEWAY_TOKENS" => Some(self.gateway.clone()),
            "REMEDY_METRICS_TOKENS" => Some(self.metrics.clone()),
            "REMEDY_UI_OPERATOR_TOKENS" => Some(self.operator.clone()),
            _ => Environment.get(name),
        }
    }
}

/// Runs `remedy serve`. Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT); 2 for a bad configuration or a
/// service that cannot start.
pub fn run(args: Args) -> ExitCode {
    let mut config = match &args.config {
        Some(path) => ServeConfig::from_file(path),
        None => Ok(ServeConfig::default()),
    }
    .and_then(|c| c.with_env(|name| std::env::var(name).ok()));
    if let Ok(c) = &mut config {
        if let Some(listen) = &args.listen {
            match listen.parse() {
                Ok(addr) => c.listen = addr,
                Err(e) => return common::bad_input(format!("--listen `{listen}`: {e}")),
            }
        }
        if let Some(store) = &args.store {
            c.store.clone_from(store);
        } else if args.demo && args.config.is_none() && std::env::var_os("REMEDY_STORE").is_none() {
            c.store = "sqlite://remedy-demo.db".to_owned();
        }
    }
    let config = match config {
        Ok(config) => config,
        Err(e) => return common::bad_input(e),
    };
    init_logs(config.json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return common::bad_input(format!("cannot start a runtime: {e}")),
    };
    runtime.block_on(serve(config, &args))
}

async fn serve(mut config: ServeConfig, args: &Args) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => return common::bad_input(format!("listening on {}: {e}", config.listen)),
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return common::bad_input(format!("listening on {}: {e}", config.listen)),
    };
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
        if !args.demo {
            tracing::warn!(
                "public_url is not set: callback URLs point at http://{addr}, which LightFlow reaches only if it is \
                 this machine's public address; set public_url (or REMEDY_PUBLIC_URL) to the URL LightFlow calls"
            );
        }
    }
    let url = config.public_url();
    let demo_secrets;
    let (secrets, token): (&dyn Secrets, Option<TokenSource>) = if args.demo {
        let lightflow_token = format!("demo-{:x}", std::process::id());
        match demo::start_lightflow(&lightflow_token, u64::from(std::process::id()), Duration::from_secs(3)).await {
            Ok(base) => config.lightflow.base_url = base,
            Err(e) => return common::bad_input(format!("starting the simulated LightFlow: {e}")),
        }
        demo_secrets =
            DemoSecrets { gateway: made_up_token("gw"), metrics: made_up_token("mx"), operator: made_up_token("op") };
        (&demo_secrets, Some(TokenSource::fixed(lightflow_token)))
    } else {
        (&Environment, None)
    };
    let mut options = BuildOptions::default();
    options.token = token;
    if args.demo {
        options.policy = Some(("demo.rhai".to_owned(), demo::POLICY.to_owned()));
    }
    let service = match Service::build(&config, secrets, options).await {
        Ok(service) => service,
        Err(e) => return common::bad_input(e),
    };
    println!("remedy serve: listening on {url}");
    println!("  store      {}", service.store.describe());
    println!("  callbacks  {url}/callbacks/lightflow");
    println!("  gateway    POST {url}/assets");
    println!("  health     {url}/healthz, {url}/readyz");
    if config.ui.enabled {
        println!(
            "  web view   {url}/ui (tokens from {} and {})",
            config.ui.viewer_tokens_env, config.ui.operator_tokens_env
        );
    }
    if args.demo {
        println!("  LightFlow  simulated at {}", config.lightflow.base_url);
        println!("  gateway token (demo)  {}", secrets.get(&config.gateway.tokens_env).unwrap_or_default());
        println!(
            "  metrics    curl -H 'Authorization: Bearer {}' {url}/metrics",
            secrets.get(&config.metrics.tokens_env).unwrap_or_default()
        );
        println!("  jobs       remedy jobs --store {} list", config.store);
        if config.ui.enabled {
            let operator = secrets.get(&config.ui.operator_tokens_env).unwrap_or_default();
            println!("  operator token (demo)  {operator}");
            println!("  web view, signed in as the operator:  {url}/ui/login?token={operator}");
        }
        let gateway = secrets.get(&config.gateway.tokens_env).unwrap_or_default();
        tokio::spawn(demo::drive(url.clone(), gateway, args.demo_assets));
    }
    match service.serve(listener, shutdown_signal(), args.shutdown_deadline).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => common::bad_input(e),
    }
}

/// A token for the demo's run: 256 random bits.
fn made_up_token(prefix: &str) -> String {
    let random = CallbackKey::generate().map(|k| k.to_base64()).unwrap_or_else(|_| format!("{:x}", std::process::id()));
    format!("{prefix}-{}", random.trim_end_matches('=').replace(['+', '/'], "x"))
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Logs to standard error: text, or JSON lines; the level from `RUST_LOG` (default `info`).
fn init_logs(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { logs.json().try_init() } else { logs.try_init() };
}
