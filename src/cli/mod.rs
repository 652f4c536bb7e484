//! Argument definitions (clap) and dispatch.

mod backdoor;
mod bench;
mod check;
mod common;
mod demo;
mod eval;
mod export;
mod set;
mod synth;
mod synth_vnnlib;
mod synth_vnnlib_alg1;
mod synth_vnnlib_set;
mod train;
mod verify;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

pub use common::{Outcome, error_text};

/// Certified quantization strategy synthesis for ReLU networks.
#[derive(Debug, Parser)]
#[command(name = "certquant", version, about, long_about = None)]
pub struct Cli {
    /// Log progress details to stderr (or set CERTQUANT_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accuracy of a network on a labelled data set.
    Eval(EvalArgs),
    /// Prove local robustness of one input with DeepPoly (--data/--id/--eps), or decide a
    /// VNN-LIB property (--vnnlib: holds/violated/unknown/timeout). Exit 0 verified/holds, 1 not.
    Verify(VerifyArgs),
    /// Synthesize a certified quantization strategy.
    #[command(subcommand)]
    Synth(SynthCommand),
    /// Run the main job on the embedded demo network and images.
    Demo(DemoArgs),
    /// Run many synthesis tasks and summarise them (the paper's Table 2).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Train a small ReLU MLP (how the embedded demo network was made).
    Train(train::TrainArgs),
    /// Search the box for a counterexample (random, corners, PGD); exit 1 if one is found.
    Attack(AttackArgs),
    /// Re-check a certificate independently (exit 0 valid, 1 invalid, 2 unreadable input).
    Check(check::CheckArgs),
    /// Export the integer program of an integer-semantics certificate (docs/method.md §17):
    /// C99, integer ONNX, or its integer logits on a data set.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Internal: run one bench task read as JSON from stdin and print its record (the bench
    /// pool starts this binary so; not for direct use).
    #[command(hide = true)]
    Worker,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Robustness tasks: ids × eps.
    Robustness(bench::BenchRobustnessArgs),
    /// Backdoor tasks: trigger positions × sizes × target classes (Algorithm 2).
    Backdoor(bench::BenchBackdoorArgs),
    /// The fast preimage engine against the paper's single MILP: medians, ratio, χ agreement.
    Preimages(bench::BenchPreimagesArgs),
    /// Join the results files of a bench's shards (`--shard K/N`) into one, in task order.
    Merge(bench::BenchMergeArgs),
    /// VNN-COMP instance list (network, VNN-LIB property, timeout): `verify --vnnlib` per
    /// instance, a competition-shaped results CSV and a table against `verdicts.csv`.
    Vnncomp(bench::BenchVnncompArgs),
    /// Candidate tests per second of the property-set search: the old one-image-at-a-time
    /// accuracy against the batched one, on the same candidates (issue 16).
    Candidates(bench::BenchCandidatesArgs),
}

#[derive(Debug, Subcommand)]
enum SynthCommand {
    /// Algorithm 1: a strategy keeping local robustness of one input (exit 0 certified, 1 not).
    Robustness(SynthRobustnessArgs),
    /// Algorithm 2: a strategy keeping backdoor-freeness for a trigger and target class
    /// (SPRT; exit 0 certified, 1 not).
    Backdoor(backdoor::SynthBackdoorArgs),
    /// Certified quantization of a VNN-LIB property: per-layer bits whose QNN the split proof
    /// proves (status certified / violated / unknown; exit 0 certified, 1 not).
    Vnnlib(synth_vnnlib::SynthVnnlibArgs),
}

/// Where inputs come from.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// IDX directory (t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz]) or a .npy file.
    #[arg(long)]
    pub data: PathBuf,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// ONNX model.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Only the first N inputs.
    #[arg(long)]
    limit: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `verify`: the robustness form (`--data --id --eps`) or the VNN-LIB form (`--vnnlib`),
/// mutually exclusive.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("form").required(true).args(["data", "vnnlib"])))]
struct VerifyArgs {
    /// ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// IDX directory or .npy file (robustness form).
    #[arg(long, conflicts_with = "vnnlib", requires_all = ["id", "eps"])]
    data: Option<PathBuf>,
    /// Index of the input (0-based; robustness form).
    #[arg(long, requires = "data")]
    id: Option<usize>,
    /// L∞ radius in input units: a decimal (0.0078) or a fraction (2/255) (robustness form).
    #[arg(long, allow_hyphen_values = true, requires = "data")]
    eps: Option<String>,
    /// Class that must stay on top (default: the data set's label, else the prediction).
    #[arg(long, requires = "data")]
    label: Option<usize>,
    #[command(flatten)]
    vnn: verify::VnnlibArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One input and a radius: the arguments `verify` and `attack` share.
#[derive(Debug, Args)]
struct PointArgs {
    /// ONNX model.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Index of the input (0-based).
    #[arg(long)]
    id: usize,
    /// L∞ radius in input units: a decimal (0.0078) or a fraction (2/255).
    #[arg(long, allow_hyphen_values = true)]
    eps: String,
    /// Class that must stay on top (default: the data set's label, else the prediction).
    #[arg(long)]
    label: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AttackArgs {
    #[command(flatten)]
    point: PointArgs,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Preimage template choice (serialised as in the records: `code`, `paper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateArg {
    /// α/β from the centre value (authors' code).
    Code,
    /// α = β = (u − l)/2 (paper).
    Paper,
}

/// How hidden-layer bits are chosen where the preimage check rejects every `F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodArg {
    /// The paper's Algorithm 1: the search stops there (`unknown`). The Table-2 reproduction
    /// uses it (`--method paper`).
    Paper,
    /// Fall back to the fewest bits with which DeepPoly still proves the property (later
    /// layers at B_u), then go on. The default since issue 16 (BENCHMARKS.md: MP3/FP3 50/0
    /// where Algorithm 1 certifies 31/19 and 35/15, at float − 1 point of accuracy).
    #[default]
    Guided,
}

/// The method of records and worker messages that do not name one: they were written before
/// `--method` existed, by Algorithm 1.
fn method_of_old_records() -> MethodArg {
    MethodArg::Paper
}

/// Preimage engine choice (serialised as in the records: `fast`, `paper`, `abstract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreimageArg {
    /// Decomposed, pruned MILPs (default).
    Fast,
    /// The paper's single MILP per layer.
    Paper,
    /// No MILP: the authors' abstraction-only mode, made sound (safe χ, usually smaller).
    Abstract,
}

/// Objective of the property-set search.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ObjectiveArg {
    /// Minimise Σ Q_i · params_i.
    Memory,
    /// The paper's per-layer-minimal order.
    Paper,
}

/// Options shared by the synthesis commands (also sent to bench workers as JSON).
#[derive(Debug, Args, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthOpts {
    /// Relaxed mode (Quadapter*): up to 25% of a hidden layer's checks may fail.
    #[arg(long)]
    pub relaxed: bool,
    /// Smallest fractional width tried (B_l; default 1 strict, 2 relaxed).
    #[arg(long)]
    pub min_frac: Option<u32>,
    /// Largest fractional width tried (B_u).
    #[arg(long, default_value_t = 16)]
    pub max_frac: u32,
    /// Preimage template.
    #[arg(long, value_enum, default_value_t = TemplateArg::Code)]
    pub template: TemplateArg,
    /// Preimage engine.
    #[arg(long, value_enum, default_value_t = PreimageArg::Fast)]
    pub preimage: PreimageArg,
    /// Largest χ considered by the preimage MILPs (the authors' bound, 100).
    #[arg(long, default_value_t = certquant_synth::preimage::CHI_MAX_DEFAULT)]
    pub chi_max: f64,
    /// Time limit per MILP solve, seconds (the solver's proven bound is used on expiry, so χ
    /// may only shrink). Default: none for robustness; 10 s for `synth/bench backdoor`.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Fast engine, anytime: settle a part by its relaxation bound when that is within this
    /// relative gap of the cutoff (0 = exact, 1 = no MILP); χ stays safe, may be smaller.
    #[arg(long, default_value_t = 0.0)]
    pub gap: f64,
    /// Time limit (s) of the relaxed mode's count of simultaneous check failures (an exact
    /// search, then the MILP; on expiry the MILP's proven bound is used: pessimistic, never
    /// unsound).
    #[arg(long, default_value_t = 10.0)]
    pub relaxed_time_limit: f64,
    /// Reproduce the authors' count model (docs/method.md, eq. (70)): a rejected hidden-layer
    /// candidate's failure constraints stay, so a later candidate is rejected only at an input
    /// that also fails every earlier rejected one again. Fewer bits; the output check stays
    /// the sound proof.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub carry_rejections: bool,
    /// Falsification cross-check: attack the QNN (random, corners, PGD). A counterexample to
    /// a certified result is a soundness bug and makes the command fail (exit 2).
    #[arg(long)]
    pub attack: bool,
    /// Where no F keeps a hidden layer inside its preimage (e.g. χ = 0 on deep networks):
    /// `paper` stops (`unknown`), `guided` takes the fewest bits with which DeepPoly still proves
    /// the property with later layers at B_u and goes on. Where the paper's search succeeds
    /// both give the same bits. Default `guided` (BENCHMARKS.md, issue 16); `paper` for the
    /// Table-2 reproduction.
    #[arg(long, value_enum, default_value_t = MethodArg::Guided)]
    #[serde(default = "method_of_old_records")]
    pub method: MethodArg,
    /// With `--method guided`: a guided choice (and the output layer after one) must keep the
    /// accuracy on `--data` within this many percentage points of the float network's. With
    /// `--semantics integer` the activation formats keep this floor too (without `guided`:
    /// within this many points of the weight-quantized network's accuracy).
    #[arg(long, default_value_t = 1.0)]
    pub guided_max_drop: f64,
    /// Pass a parameter to the MILP backend, `NAME=VALUE` (CBC: any of its command-line
    /// parameters, e.g. `strong=0`); repeatable. For solver experiments: it changes how the
    /// solver searches, not what its answers mean.
    #[arg(long = "solver-param", value_name = "NAME=VALUE", value_parser = parse_solver_param)]
    pub solver_param: Vec<String>,
    /// Write every MILP the synthesis solves to DIR as `model<N>.mps` (to compare solvers on
    /// the exact instances).
    #[arg(long, value_name = "DIR")]
    pub dump_mps: Option<std::path::PathBuf>,
    /// The arithmetic the certificate speaks of: `real` (the paper's: quantized weights,
    /// real-valued activations) or `integer` (integer-only inference: the input and every
    /// hidden activation rounded half to even onto an unsigned fixed-point format and
    /// saturated, integer accumulators, shifts; docs/method.md §17). With `integer` the
    /// activation formats are chosen after the weight bits.
    #[arg(long, value_enum, default_value_t = SemanticsArg::Real)]
    #[serde(skip_serializing_if = "SemanticsArg::is_real")]
    pub semantics: SemanticsArg,
    /// With `--semantics integer`: accumulator width in bits; a strategy whose accumulators
    /// could overflow on some input is refused (docs/method.md, eq. (57)).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(8..=64))]
    #[serde(skip_serializing_if = "is_default_acc_bits")]
    pub acc_bits: u32,
    /// With `--semantics integer`: the largest activation fractional width tried.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=40))]
    #[serde(skip_serializing_if = "is_default_act_max_frac")]
    pub act_max_frac: u32,
}

/// Records and worker messages leave the integer-semantics options out at their defaults, so
/// results files of the real semantics read and write back unchanged.
fn is_default_acc_bits(v: &u32) -> bool {
    *v == 32
}

/// See [`is_default_acc_bits`].
fn is_default_act_max_frac(v: &u32) -> bool {
    *v == 16
}

/// Which arithmetic a certificate speaks of (docs/method.md §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SemanticsArg {
    /// Quantized weights, real-valued activations (the paper's; Table 2).
    #[default]
    Real,
    /// Integer-only inference with quantized activations.
    Integer,
    /// IEEE binary32 inference of the weight-quantized network, any summation order
    /// (docs/method.md, eqs. (58b), (58c)).
    Float32,
}

impl SemanticsArg {
    /// `true` for the real semantics (left out of records, which then read as before).
    pub fn is_real(&self) -> bool {
        *self == SemanticsArg::Real
    }
}

/// Checks the form of a `--solver-param` value.
fn parse_solver_param(text: &str) -> Result<String, String> {
    certquant::milp::SolverTuning::parse_param(text).map(|_| text.to_string())
}

impl Default for SynthOpts {
    /// The command line's defaults (no flag given), taken from the clap definitions so the
    /// two cannot drift apart.
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            opts: SynthOpts,
        }
        Defaults::parse_from(["certquant"]).opts
    }
}

impl SynthOpts {
    /// Bench workers receive these options as JSON, where a non-finite number has no
    /// representation: refuse such values up front instead of failing every task.
    pub fn ensure_finite(&self) -> anyhow::Result<()> {
        for (flag, v) in [
            ("--chi-max", Some(self.chi_max)),
            ("--gap", Some(self.gap)),
            ("--relaxed-time-limit", Some(self.relaxed_time_limit)),
            ("--guided-max-drop", Some(self.guided_max_drop)),
            ("--time-limit", self.time_limit),
        ] {
            if let Some(v) = v
                && !v.is_finite()
            {
                anyhow::bail!("{flag} must be a finite number");
            }
        }
        if self.guided_max_drop < 0.0 {
            anyhow::bail!("--guided-max-drop must not be negative");
        }
        if let Some(dir) = &self.dump_mps
            && !dir.is_dir()
        {
            anyhow::bail!("--dump-mps {}: not an existing directory", dir.display());
        }
        for p in &self.solver_param {
            certquant::milp::SolverTuning::parse_param(p).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
struct SynthRobustnessArgs {
    /// ONNX model (float).
    #[arg(long)]
    model: PathBuf,
    /// IDX directory (t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz]) or a .npy file.
    #[arg(long, required_unless_present = "vnnlib")]
    data: Option<PathBuf>,
    /// Index of the input (0-based); repeat for a property set.
    #[arg(long, required_unless_present_any = ["ids", "vnnlib"])]
    id: Vec<usize>,
    /// A property set: ids as a comma-separated list or a file (one strategy for all of them).
    #[arg(long)]
    ids: Option<String>,
    /// L∞ radius: a decimal or a fraction such as 2/255.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "vnnlib")]
    eps: Option<String>,
    /// VNN-LIB properties instead of ids × eps (a directory: its `*.vnnlib` files, sorted):
    /// one certified QNN for all of them, each proven by input splitting on the QNN.
    /// Robustness-shaped files (`∨_{j≠L} Y_j ≥ Y_L`) run Algorithm 1 (`--method`, one box) or
    /// the property-set search (several boxes or files) first.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR", conflicts_with_all = ["data", "id", "ids", "eps", "chi"])]
    vnnlib: Vec<PathBuf>,
    /// With --vnnlib: wall-clock budget in seconds (float proofs and search stop at 90 % of it).
    #[arg(long, requires = "vnnlib")]
    timeout: Option<f64>,
    /// With --vnnlib: largest number of input-box splits of each float proof.
    #[arg(long, default_value_t = 10_000, requires = "vnnlib")]
    max_splits: usize,
    #[command(flatten)]
    synth: SynthOpts,
    /// Skip the preimage computation and use these χ values, one per hidden layer, input side
    /// first (e.g. the "chi" of an earlier run on the same task). Not re-proven; the output
    /// check still proves the property on the quantized network.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with = "ids"
    )]
    chi: Option<Vec<f64>>,
    /// Property sets: what to minimise (weight memory, or the paper's per-layer order).
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Memory)]
    objective: ObjectiveArg,
    /// Property sets: labelled data for the accuracy floor.
    #[arg(long)]
    accuracy_data: Option<PathBuf>,
    /// Property sets: largest allowed accuracy drop in percentage points (with --accuracy-data).
    #[arg(long, default_value_t = 1.0)]
    max_acc_drop: f64,
    /// Property sets: exact enumeration, descent (polynomial in depth), or auto (exact up to
    /// 4 affine layers).
    #[arg(long, value_enum, default_value_t = set::SearchArg::Auto)]
    search: set::SearchArg,
    /// Also report the quantized network's accuracy on the whole --data set.
    #[arg(long)]
    accuracy: bool,
    /// Write the quantized network (qnn.onnx) and certificate.json into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Directory for the demo's QNN and certificate.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Eval(a) => eval::eval(&a.model, &a.data.data, a.limit, a.json),
        Command::Verify(a) => match (a.data, a.id, a.eps) {
            (Some(data), Some(id), Some(eps)) => eval::verify(&PointArgs {
                model: a.model,
                data: DataArgs { data },
                id,
                eps,
                label: a.label,
                json: a.json,
            }),
            _ => verify::vnnlib(&a.model, &a.vnn, a.json),
        },
        Command::Synth(SynthCommand::Robustness(a)) if !a.vnnlib.is_empty() => {
            synth_vnnlib_set::synth_vnnlib_set(
                &synth_vnnlib_set::VnnlibSetRequest {
                    model: &a.model,
                    vnnlib: &a.vnnlib,
                    opts: &a.synth,
                    search: a.search,
                    accuracy_data: a.accuracy_data.as_deref(),
                    max_acc_drop: a.max_acc_drop,
                    timeout: a.timeout,
                    max_splits: a.max_splits,
                    out: a.out.as_deref(),
                },
                a.json,
            )
        }
        Command::Synth(SynthCommand::Robustness(a)) => {
            let (Some(data), Some(eps)) = (&a.data, &a.eps) else {
                anyhow::bail!("--data and --eps are required (or --vnnlib)");
            };
            if a.ids.is_none() && a.id.len() == 1 && a.accuracy_data.is_none() {
                synth::robustness(
                    &synth::RobustnessRequest {
                        model: &a.model,
                        data,
                        id: a.id[0],
                        eps,
                        opts: &a.synth,
                        chi: a.chi.as_deref(),
                        accuracy: a.accuracy,
                        out: a.out.as_deref(),
                    },
                    a.json,
                )
            } else {
                let mut ids = a.id.clone();
                if let Some(list) = &a.ids {
                    ids.extend(certquant::bench::parse_ids(list)?);
                }
                set::robustness_set(&set::SetRequest {
                    model: &a.model,
                    data,
                    ids,
                    eps,
                    opts: &a.synth,
                    objective: a.objective,
                    accuracy_data: a.accuracy_data.as_deref(),
                    max_acc_drop: a.max_acc_drop,
                    search: a.search,
                    out: a.out.as_deref(),
                    json: a.json,
                })
            }
        }
        Command::Synth(SynthCommand::Backdoor(a)) => backdoor::synth_backdoor(&a),
        Command::Synth(SynthCommand::Vnnlib(a)) => synth_vnnlib::synth_vnnlib(&a),
        Command::Demo(a) => demo::demo(&a.out, a.json),
        Command::Train(a) => train::train(&a),
        Command::Bench(BenchCommand::Robustness(a)) => bench::robustness(&a),
        Command::Bench(BenchCommand::Backdoor(a)) => bench::backdoor(&a),
        Command::Bench(BenchCommand::Preimages(a)) => bench::preimages(&a),
        Command::Bench(BenchCommand::Merge(a)) => bench::merge(&a),
        Command::Bench(BenchCommand::Vnncomp(a)) => bench::vnncomp(&a),
        Command::Bench(BenchCommand::Candidates(a)) => bench::candidates(&a),
        Command::Check(a) => check::check(&a),
        Command::Export(a) => export::run(&a),
        Command::Attack(AttackArgs { point, seed }) => eval::attack(&point, seed),
        Command::Worker => bench::worker::worker(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default method is `guided` (issue 16); options that name none — records and worker
    /// messages written before `--method` existed — read as `paper`, which they were.
    #[test]
    fn guided_is_the_default_and_old_records_read_as_paper() {
        assert_eq!(SynthOpts::default().method, MethodArg::Guided);
        assert_eq!(MethodArg::default(), MethodArg::Guided);
        let mut v = serde_json::to_value(SynthOpts::default()).unwrap();
        assert_eq!(v["method"], "guided");
        v.as_object_mut().unwrap().remove("method");
        let old: SynthOpts = serde_json::from_value(v).unwrap();
        assert_eq!(old.method, MethodArg::Paper);
        let given: SynthOpts = serde_json::from_str(r#"{"method":"guided"}"#).unwrap();
        assert_eq!(given.method, MethodArg::Guided);
    }
}
