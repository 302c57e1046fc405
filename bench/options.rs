//! The harness's options, as bench/run passes them on, and the settings a run records beside its figures.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a run measured with; results.json keeps them so its figures can be compared.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Length of one load round.
    pub seconds: u64,
    /// Load rounds per figure; the figure is their median.
    pub rounds: usize,
    pub concurrency: usize,
    /// Completions timed by pair 3.
    pub wakes: usize,
    /// Waiting desktops per step of pair 4.
    pub streams: Vec<Streams>,
}

/// One step of pair 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Written", into = "Written")]
pub enum Streams {
    Count(usize),
    /// As many as the open-file limit allows, which only the machine running the step knows.
    Max,
}

impl Streams {
    pub fn within(self, ceiling: usize) -> usize {
        match self {
            Streams::Count(n) => n.min(ceiling),
            Streams::Max => ceiling,
        }
    }
}

impl FromStr for Streams {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "max" => Ok(Streams::Max),
            n => n
                .parse()
                .map(Streams::Count)
                .map_err(|_| format!("{n}: a number of streams or max")),
        }
    }
}

/// A step as the command line and results.json write it: a number or the word `max`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Written {
    Count(usize),
    Word(String),
}

impl From<Streams> for Written {
    fn from(step: Streams) -> Self {
        match step {
            Streams::Count(n) => Written::Count(n),
            Streams::Max => Written::Word("max".into()),
        }
    }
}

impl TryFrom<Written> for Streams {
    type Error = String;

    fn try_from(written: Written) -> Result<Self, String> {
        match written {
            Written::Count(n) => Ok(Streams::Count(n)),
            Written::Word(word) => word.parse(),
        }
    }
}

pub struct Options {
    pub settings: Settings,
    /// The pairs to run (1 to 6); all by default.
    pub only: Vec<u8>,
    pub redis_url: String,
}

impl Options {
    pub fn from_args() -> Self {
        let mut settings = Settings {
            seconds: 5,
            rounds: 3,
            concurrency: 32,
            wakes: 1000,
            streams: vec![Streams::Count(1_000), Streams::Count(10_000), Streams::Max],
        };
        let mut only: Vec<u8> = (1..=6).collect();
        let args: Vec<String> = std::env::args().skip(1).collect();
        for pair in args.chunks(2) {
            let value = pair.get(1).cloned().unwrap_or_default();
            match pair[0].as_str() {
                "--seconds" => settings.seconds = value.parse().expect("--seconds N"),
                "--rounds" => settings.rounds = value.parse().expect("--rounds N"),
                "--concurrency" => settings.concurrency = value.parse().expect("--concurrency N"),
                "--wakes" => settings.wakes = value.parse().expect("--wakes N"),
                "--streams" => {
                    settings.streams = value
                        .split(',')
                        .map(|n| n.parse().expect("--streams 1000,10000,max"))
                        .collect()
                }
                "--only" => {
                    only = value
                        .split(',')
                        .map(|n| n.parse().expect("--only 1,4"))
                        .collect()
                }
                other => panic!("unknown option {other}; bench/run --help lists them"),
            }
        }
        Options {
            settings,
            only,
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        }
    }

    pub fn runs(&self, pair: u8) -> bool {
        self.only.contains(&pair)
    }

    /// Only a run of every pair may replace the committed results.
    pub fn is_whole(&self) -> bool {
        (1..=6).all(|pair| self.runs(pair))
    }
}
