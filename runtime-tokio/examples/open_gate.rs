//! Send the gate command once over mutual TLS and print its outcome (tokio); exit 1 when it
//! failed.
//!
//! ```sh
//! SIP_PASSWORD=… cargo run -p latchkey-tokio --example open_gate -- \
//!     vdesip.bs.iotleg.com:5228 legrand-ca.pem client.crt client.key USER GATEWAY.bs.iotleg.com
//! ```
#![allow(clippy::print_stdout)]

use latchkey_protocol::sip::agent::{Account, AgentConfig, GateConfig, Server, StreamTransport};
use latchkey_tokio::http::Roots;
use latchkey_tokio::sip::{Outcome, SipClient, SipConfig};
use latchkey_tokio::tls::{Identity, LiveIdentity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, driver) = SipClient::new(config()?)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async move {
        tokio::spawn(driver.run());
        let outcome = client.open_gate().await;
        client.shutdown().await;
        outcome
    })?;
    match outcome {
        Outcome::Delivered { status } => println!("gate command delivered ({status})"),
        Outcome::Failed { status, reason } => {
            println!("gate command failed ({status:?}): {reason}");
            std::process::exit(1);
        }
        other => println!("{other:?}"),
    }
    Ok(())
}

/// `SERVER_HOST:PORT CA.pem CERT.pem KEY.pem USER DOMAIN`, password in `SIP_PASSWORD`.
fn config() -> Result<SipConfig, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, ca, cert, key, user, domain] = args.as_slice() else {
        return Err("usage: SERVER_HOST:PORT CA.pem CERT.pem KEY.pem USER DOMAIN (password in SIP_PASSWORD)".into());
    };
    let password = std::env::var("SIP_PASSWORD").map_err(|_| "set SIP_PASSWORD")?;
    let (host, port) = server.rsplit_once(':').ok_or("SERVER_HOST:PORT")?;
    let mut agent = AgentConfig::new(
        Account::new(user.as_str(), domain.as_str(), password),
        Server::new(host, port.parse()?, StreamTransport::Tls),
    );
    agent.gate = Some(GateConfig::new(
        format!("sip:c100x@{domain}"),
        "text/plain",
        r#"{"jsonrpc":"2.0","id":"{id}","method":"lock.setStatus","params":[{"status":"open"}]}"#,
    ));
    let mut config = SipConfig::new(agent);
    config.roots = Roots::Pem(std::fs::read(ca)?);
    config.identity = Some(LiveIdentity::new(Identity::from_pem(
        &std::fs::read(cert)?,
        &std::fs::read(key)?,
    )?));
    Ok(config)
}
