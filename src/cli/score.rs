//! `premem score`: placeholder until its stage lands.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`premem score` is not built yet")
}
