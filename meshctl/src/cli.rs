//! Command-line grammar of `meshctl` (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default address of the master's client gRPC endpoint.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2381";

/// Admin CLI of Meshgress: manage objects, members and proxies of a mesh-master cluster over gRPC.
#[derive(Debug, Parser)]
#[command(name = "meshctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Master client address: `host:port` or `http://host:port`; a comma list is tried in order.
    #[arg(long, global = true, env = "MESHCTL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Output format (default: yaml for `object get`, table for lists and `status`).
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<OutputFormat>,

    /// Seconds to wait for the connection and for each request.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML documents (what `object create -f` reads back).
    #[value(alias = "yml")]
    Yaml,
    /// Pretty-printed JSON.
    Json,
    /// Aligned columns with a header line.
    Table,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, update, apply, get, list or delete objects.
    #[command(subcommand, visible_aliases = ["o", "obj"])]
    Object(ObjectCommand),
    /// Show the members of the master cluster.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Show the proxies connected to the master's config stream and what they applied.
    #[command(visible_alias = "stat")]
    Status {
        /// Only this proxy (node id).
        node: Option<String>,
    },
}

/// `meshctl object ...`
#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Create objects; fails if an object of the same name exists.
    Create(WriteArgs),
    /// Update existing objects; fails if one does not exist.
    Update(WriteArgs),
    /// Create objects, or update those that exist.
    Apply(WriteArgs),
    /// Print one object's document.
    #[command(override_usage = "meshctl object get [OPTIONS] [KIND] NAME")]
    Get {
        /// `NAME`, or `KIND NAME` to also check the object's kind.
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// List objects, optionally of one kind.
    #[command(visible_alias = "ls")]
    List {
        /// Only objects of this kind (case-insensitive; `hs` = HTTPServer, `pl` = Pipeline).
        kind: Option<String>,
    },
    /// Delete one object.
    #[command(
        visible_alias = "rm",
        override_usage = "meshctl object delete [OPTIONS] [KIND] NAME"
    )]
    Delete {
        /// `NAME`, or `KIND NAME` to delete only if the object is of that kind.
        #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
}

/// Where `create`, `update` and `apply` read their documents.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// YAML or JSON file with one or more documents (`---` separated); `-` or none reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `meshctl member ...`
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the members with their role, addresses, last heartbeat and health.
    #[command(visible_alias = "ls")]
    List,
}

/// Splits `[KIND] NAME` positional arguments into an optional kind and the name.
pub fn kind_and_name(args: &[String]) -> (Option<&str>, &str) {
    match args {
        [kind, name, ..] => (Some(kind.as_str()), name.as_str()),
        [name] => (None, name.as_str()),
        [] => (None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_aliases_and_globals() {
        let cli = Cli::try_parse_from([
            "meshctl", "obj", "get", "demo", "-o", "json", "--server", "h:1",
        ])
        .unwrap();
        assert_eq!(cli.output, Some(OutputFormat::Json));
        assert_eq!(cli.server, "h:1");
        match cli.command {
            Command::Object(ObjectCommand::Get { args }) => assert_eq!(args, ["demo"]),
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from(["meshctl", "o", "create", "-f", "x.yaml"]).unwrap();
        match cli.command {
            Command::Object(ObjectCommand::Create(WriteArgs { file })) => {
                assert_eq!(file.unwrap().to_str(), Some("x.yaml"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn get_takes_optional_kind() {
        let cli =
            Cli::try_parse_from(["meshctl", "object", "delete", "HTTPServer", "demo"]).unwrap();
        match cli.command {
            Command::Object(ObjectCommand::Delete { args }) => {
                assert_eq!(kind_and_name(&args), (Some("HTTPServer"), "demo"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["meshctl", "object", "get"]).is_err());
        assert!(Cli::try_parse_from(["meshctl", "object", "get", "a", "b", "c"]).is_err());
    }
}
