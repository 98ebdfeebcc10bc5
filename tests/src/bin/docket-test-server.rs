//! The server as a separate process, for tests that kill it: `docket-test-server <database url>`
//! serves with the test settings on a free port and prints `listening <port>` once it does.

use docket_api::startup::Application;
use docket_tests::test_settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: docket-test-server <database url>"))?;
    // Logs as JSON lines on stderr, for tests that read what the server says of itself.
    docket_api::telemetry::init(docket_api::config::LogFormat::Json);
    let app = Application::build(test_settings(&url)).await?;
    println!("listening {}", app.port());
    app.run_until_stopped(std::future::pending()).await
}
