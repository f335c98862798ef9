//! `hu-red user add|list|remove`: the dashboard's users (see `[web]`). Passwords are read from
//! the terminal without echo (twice), or once from standard input with `--password-stdin`; only
//! their argon2id hash is stored. Every change is recorded in the audit log.

use crate::actions::Actor;
use crate::cli::{load_config, open_existing_store, runtime};
use crate::store::{now_ms, Role};
use crate::users;
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    /// Service configuration file (database URL); HURED__ variables work too.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Reads everything, sets baselines and resends reports.
    Physicist,
    /// Reads everything.
    Viewer,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Add a dashboard user (asks for the password twice, unless --password-stdin).
    Add {
        /// Letters, digits, '.', '_', '-', '@' (at most 64).
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users, their role and whether they are locked.
    List,
    /// Remove a user (their sessions end at once).
    Remove { name: String },
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    // the password is read before the database is opened: a typo costs no connection
    let password = match &args.command {
        UserCommand::Add {
            name,
            password_stdin,
            ..
        } => {
            users::check_name(name)?;
            Some(read_password(*password_stdin)?)
        }
        _ => None,
    };
    let actor = Actor::command_line();
    runtime()?.block_on(async move {
        // adding the first user may come before the service's first start: that creates the
        // database (and says so); listing and removing need an existing one
        let store = match &args.command {
            UserCommand::Add { .. } => match open_existing_store(&config).await {
                Ok(s) => s,
                Err(_) => {
                    let s = crate::store::Store::connect(&config.database.url).await?;
                    eprintln!("hu-red: created the database {}", s.display_url());
                    s
                }
            },
            _ => open_existing_store(&config).await?,
        };
        let r = async {
            match args.command {
                UserCommand::Add { name, role, .. } => {
                    let role = match role {
                        RoleArg::Physicist => Role::Physicist,
                        RoleArg::Viewer => Role::Viewer,
                    };
                    let hash = users::hash_password(password.as_deref().unwrap_or_default())?;
                    if !store.add_user(&name, role, &hash, now_ms()).await? {
                        bail!("user {name} exists (remove it first to change it)");
                    }
                    store
                        .record_audit(&actor.entry(
                            "user.add",
                            format!("user {name}"),
                            Some(format!("role {role}")),
                        ))
                        .await?;
                    println!("user {name} added ({role})");
                }
                UserCommand::List => {
                    let all = store.list_users().await?;
                    if all.is_empty() {
                        println!("no users: add one with `hu-red user add NAME --role physicist`");
                    }
                    let now = now_ms();
                    for u in all {
                        let locked = u
                            .locked_until
                            .filter(|&t| t > now)
                            .map(|t| {
                                format!("  locked until {}", crate::report::utc_timestamp_of_ms(t))
                            })
                            .unwrap_or_default();
                        println!(
                            "{:<24} {:<10} added {}{locked}",
                            u.name,
                            u.role,
                            crate::report::utc_timestamp_of_ms(u.created_at)
                        );
                    }
                }
                UserCommand::Remove { name } => {
                    if !store.remove_user(&name).await? {
                        bail!("no user {name} (see `hu-red user list`)");
                    }
                    store
                        .record_audit(&actor.entry("user.remove", format!("user {name}"), None))
                        .await?;
                    println!("user {name} removed");
                }
            }
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        r
    })
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the password: give it on standard input with --password-stdin");
        }
        let first = rpassword::prompt_password("password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ: nothing changed");
        }
        first
    };
    if password.chars().count() < users::MIN_PASSWORD_CHARS {
        bail!(users::UserError::ShortPassword);
    }
    Ok(password)
}
