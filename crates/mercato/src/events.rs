//! `mercato events watch`: the shop's events on RabbitMQ as JSON lines (CloudEvents, one a
//! line), for a person watching a shop and for scripts that check what it published
//! (`bench/broker-outage.sh`).

use contracts::events::{ALL_TYPES, CloudEvent, EXCHANGE};
use kit::events::{Broker, Consumer};
use tokio_util::sync::CancellationToken;

/// Examples for `mercato events watch --help`.
pub const EXAMPLES: &str = "\
Examples:
  # everything, on the broker the shop uses
  MERCATO_EVENTS__URL=amqp://guest:guest@127.0.0.1:5672/%2f mercato events watch
  # orders only
  mercato events watch --url amqp://guest:guest@127.0.0.1:5672/%2f \\
    --type mercato.order.placed.v1 --type mercato.order.cancelled.v1
  # a queue that collects from now on, read later (it keeps events for 30 minutes unused)
  mercato events watch --url ... --queue audit --declare-only
  mercato events watch --url ... --queue audit";

/// What `mercato events watch` takes.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The broker, as the services are given it (amqp://user:password@host:5672/%2f).
    #[arg(long, env = "MERCATO_EVENTS__URL", value_name = "AMQP_URL", hide_env_values = true)]
    pub url: String,
    /// Consume from this durable queue, declared when missing: it keeps what is published while
    /// the watcher is away (or the broker restarts), until it has been unused for 30 minutes
    /// [default: a queue of this run's own, `watch.<random>`]
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// Only events of this type; repeatable [default: every type of the contract]
    #[arg(long = "type", value_name = "TYPE", value_parser = known_type)]
    pub types: Vec<&'static str>,
    /// Declare the queue (bound to the types) and exit: a watcher started later on the same
    /// --queue then misses nothing published from now on.
    #[arg(long, requires = "queue")]
    pub declare_only: bool,
}

/// A type of the contract (`contracts::events::ALL_TYPES`), or what they are.
fn known_type(name: &str) -> Result<&'static str, String> {
    ALL_TYPES
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| format!("not an event type of the shop; the types are {}", ALL_TYPES.join(", ")))
}

/// Prints every event of `args.types` arriving on the queue as one JSON line on stdout, each
/// id once (the broker delivers at least once), until `shutdown`; reconnects by itself when
/// the broker goes away. Fails at once if the broker cannot be reached at the start.
pub async fn watch(args: WatchArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let types = if args.types.is_empty() { ALL_TYPES.to_vec() } else { args.types };
    let consumer = Consumer::new("watch").on_raw(&types, (), |(), event: CloudEvent| async move {
        let line = serde_json::to_string(&event)?;
        crate::outln!("{line}");
        Ok(())
    });
    let broker = Broker::new(&args.url, EXCHANGE);
    let queue =
        args.queue.unwrap_or_else(|| format!("watch.{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    broker
        .declare(&queue, &consumer)
        .await
        .map_err(|e| anyhow::anyhow!("cannot declare the queue {queue} on the broker: {e:#}"))?;
    if args.declare_only {
        crate::errln!("declared the durable queue {queue}, bound to {} event types", types.len());
        return Ok(());
    }
    crate::errln!("watching {} event types on the queue {queue}; Ctrl-C stops", types.len());
    broker.consume(queue, consumer, shutdown).await;
    Ok(())
}
