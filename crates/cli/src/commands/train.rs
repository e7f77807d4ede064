//! `boltz train`: gradient descent on the suite's model class (issue #19), on the same generated data as
//! the constructions.

use anyhow::{Context, Result};
use boltz_core::format::{self, Encoding};
use boltz_core::{Backend, Dataset, DatasetSpec, Model, ReferenceBackend};
use boltz_lab::records::{RecordHead, TrainOutcome, TrainRecord};
use boltz_lab::request::{TrainInit, TrainParams, TrainPrecision, TrainRequest};
use boltz_train::{
    init_model, train as run_training, trained_capacity, CapacitySearch, Loss, ModelShape, Scalar, TrainConfig, TrainReport,
};
use serde_json::json;

use crate::cli::{LossArg, TrainArgs};

/// The request `boltz train` makes of the lab, from its arguments.
fn request(a: &TrainArgs) -> Result<TrainRequest> {
    let data = DatasetSpec {
        sequences: a.sequences,
        length: a.length,
        dim: a.dim,
        vocab: a.vocab,
        classes: a.classes,
        seed: a.seed,
        vocab_kind: a.vocab_kind,
        ..Default::default()
    };
    let shape = ModelShape {
        dim: a.dim,
        blocks: a.blocks,
        heads: a.heads,
        head_size: a.head_size.unwrap_or(a.dim),
        rank: a.rank,
        ffn_width: a.ffn_width,
    };
    let loss = match a.loss {
        LossArg::SquaredError => Loss::SquaredError,
        LossArg::CrossEntropy => Loss::CrossEntropy { classes: a.classes as usize, label_coord: data.label_coord },
    };
    let config = TrainConfig { steps: a.steps, lr: a.lr, early_stop: !a.no_early_stop, log_every: a.log_every, loss, ..Default::default() };
    TrainParams {
        data,
        shape,
        config,
        threads: a.threads,
        precision: a.precision.clone(),
        init: a.init_construction.map_or(TrainInit::Random, |p| TrainInit::Construction(p.policy())),
        seed: a.seed,
        capacity_max: a.capacity_max,
        init_seeds: a.init_seeds.clone(),
        warm_start: a.warm_start,
        save: a.save.is_some(),
        max_memory: a.max_memory,
    }
    .check()
}

pub(crate) fn train(a: &TrainArgs) -> Result<bool> {
    let req = request(a)?;
    if let Some(out) = &a.out {
        crate::commands::check_writable_file(out, "--out")?;
    }
    let (spec, shape, cfg, precision, init) = match req {
        TrainRequest::Capacity(search) => return capacity(a, search),
        TrainRequest::Fit { data, shape, config, precision, init, .. } => (data, shape, config, precision, init),
    };
    let threads = cfg.threads;
    let data = Dataset::<f64>::generate(&spec).context("generating the dataset")?;
    let save = a.save.as_deref();
    let start = match init {
        TrainInit::Random => Start::Random(&shape),
        TrainInit::Construction(policy) => {
            let options = boltz_lab::construction::BuildOptions {
                construction: boltz_construct::Construction::OneLayer(policy),
                seed: a.seed,
                threads,
                candidates: boltz_construct::ContextualOptions::CANDIDATES,
            };
            let built = boltz_lab::construction::build(&data, &options).context("--init-construction: building the memorizer")?;
            errln!("built the one-layer memorizer ({}, {} bits) to fine-tune from", policy.name(), built.bits);
            Start::Construction(built.model)
        }
    };
    let (report, params, accuracy, seconds) = match precision {
        TrainPrecision::F64 => fit::<f64>(&data, &start, &cfg, a.seed, save)?,
        TrainPrecision::F32 => fit::<f32>(&data, &start, &cfg, a.seed, save)?,
    };
    let record = TrainRecord {
        head: RecordHead::new("train", threads, serde_json::to_value(a)?),
        outcome: TrainOutcome::Fit {
            dataset: spec.clone(),
            // The construction fixes the shape of a fine-tuned model (`params` counts it).
            shape: (init == TrainInit::Random).then(|| shape.clone()),
            init: match init {
                TrainInit::Random => "random".to_string(),
                TrainInit::Construction(p) => format!("construction:{}", p.name()),
            },
            config: cfg.clone(),
            params,
            report: report.clone(),
            reference_check: json!({ "backend": "reference", "accuracy": accuracy }),
            seconds,
        },
    };
    if let Some(out) = &a.out {
        boltz_lab::meta::write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        let model = match init {
            TrainInit::Construction(p) => format!("the one-layer memorizer ({} policy) rounded to {}", p.name(), a.precision),
            TrainInit::Random => format!(
                "{} block(s), {} head(s) of size {}, {} attention, FFN width {}",
                shape.blocks,
                shape.heads,
                shape.head_size,
                shape.rank.map_or("dense".to_string(), |r| format!("rank-{r}")),
                shape.ffn_width
            ),
        };
        outln!(
            "N = {}, n = {}, d = {}, |V| = {}, {} classes, seed {}; {model}: {} parameters dense",
            a.sequences,
            a.length,
            a.dim,
            a.vocab,
            a.classes,
            a.seed,
            params.dense
        );
        outln!(
            "  {} after {} Adam steps ({:.1}s, {}): loss {:.3e}, tokens decoded {:.1}% (reference backend: {:.1}%)",
            if report.memorized { "memorized" } else { "not memorized" },
            report.steps,
            seconds,
            a.precision,
            report.final_loss,
            100.0 * report.final_accuracy,
            100.0 * accuracy
        );
    }
    Ok(true)
}

/// Trains in `T` with a progress bar; the trained model's token accuracy is re-measured on the reference
/// backend (the forward training did not use).
/// Where training starts: random weights of a shape, or a built construction (rounded to the training
/// precision).
enum Start<'a> {
    Random(&'a ModelShape),
    Construction(Model<boltz_bigfloat::BigReal>),
}

fn fit<T: Scalar>(
    data: &Dataset<f64>,
    start: &Start<'_>,
    cfg: &TrainConfig,
    seed: u64,
    save: Option<&std::path::Path>,
) -> Result<(TrainReport, boltz_core::ParamCount, f64, f64)> {
    let data: Dataset<T> = data.convert()?;
    let mut model: Model<T> = match start {
        Start::Random(shape) => init_model(shape, seed)?,
        Start::Construction(m) => m.convert().with_context(|| format!("the construction's weights rounded to {}", T::DTYPE))?,
    };
    let encoding = if T::DTYPE == "f32" { Encoding::F32 } else { Encoding::F64 };
    if let Some(dir) = save {
        std::fs::create_dir_all(dir).with_context(|| format!("--save {}", dir.display()))?;
        format::save_model(&model, &dir.join("init.safetensors"), encoding)?;
        format::save_dataset(&data, &dir.join("dataset.safetensors"), encoding)?;
    }
    let bar = indicatif::ProgressBar::new(cfg.steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let report = run_training(&mut model, &data, cfg, |step, loss, acc| {
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.3e}, {:.1}% decoded", 100.0 * acc));
    });
    bar.finish_and_clear();
    let report = report.context("training")?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(dir) = save {
        format::save_model(&model, &dir.join("trained.safetensors"), encoding)?;
    }
    // The reference backend's forward (not training's) decoded by the loss's rule.
    let out = ReferenceBackend.forward(&ReferenceBackend.prepare(&model.convert::<f64>()?)?, &data.convert::<f64>()?.inputs)?;
    let accuracy = cfg.loss.accuracy(&out, &data.convert::<f64>()?.targets)?;
    Ok((report, model.param_count(), accuracy, seconds))
}

/// `--capacity-max`: the trained-capacity search ([`trained_capacity`]), one line per training run.
fn capacity(a: &TrainArgs, search: CapacitySearch) -> Result<bool> {
    let threads = search.train.threads;
    let start = std::time::Instant::now();
    let report = trained_capacity(&search, |p| {
        errln!(
            "[{:>7.1}s] N = {:>5}, {}: {} after {} steps (loss {:.3e}, {:.1}% decoded)",
            start.elapsed().as_secs_f64(),
            p.sequences,
            p.warm_from.map_or(format!("seed {}", p.seed), |w| format!("warm start from N = {w}")),
            if p.memorized { "memorized" } else { "failed" },
            p.steps,
            p.final_loss,
            100.0 * p.final_accuracy
        );
    })
    .context("the trained-capacity search")?
    .report;
    let record = TrainRecord {
        head: RecordHead::new("train", threads, serde_json::to_value(a)?),
        outcome: TrainOutcome::Capacity { search: search.clone(), capacity: report.clone(), seconds: start.elapsed().as_secs_f64() },
    };
    if let Some(out) = &a.out {
        boltz_lab::meta::write_json(out, &record)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        outln!(
            "trained capacity: N = {} memorized, {} ({} parameters dense, {:.3} bits per parameter; {} training runs)",
            report.largest_memorized,
            report.smallest_failed.map_or("no failure up to the maximum".to_string(), |f| format!("N = {f} not")),
            report.params,
            report.bits_per_param,
            report.probes.len()
        );
    }
    Ok(true)
}
