// The home page: draws itself from the API (model list, model card) and predicts through the
// service's own KServe V1 endpoint; nothing leaves this host. When the API answers 401 the page
// asks for a key once, keeps it for the tab and sends it as a bearer token.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      node.setAttribute(key, value);
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // ---- the API key ----------------------------------------------------------------------
  const keyDialog = $("key-dialog");
  const keyForm = $("key-form");
  const keyInput = $("key-input");
  const keyError = $("key-error");
  let asking = null;
  let memoryKey = null; // when the browser refuses session storage

  function currentKey() {
    try {
      return window.sessionStorage.getItem(config.keyStore) || memoryKey;
    } catch (err) {
      return memoryKey;
    }
  }

  function showKeyLine() {
    $("key-line").hidden = currentKey() === null;
  }

  /** Ask for a key in the dialog (one question however many requests wait): the key, or null. */
  function askForKey(refused) {
    if (asking) {
      return asking;
    }
    asking = new Promise((resolve) => {
      keyError.textContent = refused ? "The server refused that key; check it and try again." : "";
      keyInput.value = "";
      const finish = (key) => {
        keyForm.removeEventListener("submit", submit);
        $("key-cancel").removeEventListener("click", cancel);
        keyDialog.removeEventListener("cancel", cancel);
        if (keyDialog.open) {
          keyDialog.close();
        }
        asking = null;
        resolve(key);
      };
      const submit = (event) => {
        event.preventDefault();
        const key = keyInput.value.trim();
        if (!key) {
          keyError.textContent = "Enter the key, or cancel.";
          keyInput.focus();
          return;
        }
        try {
          window.sessionStorage.setItem(config.keyStore, key);
        } catch (err) {
          // Storage refused (private mode): the key still serves this page until it reloads.
          memoryKey = key;
        }
        showKeyLine();
        finish(key);
      };
      const cancel = (event) => {
        event.preventDefault();
        finish(null);
      };
      keyForm.addEventListener("submit", submit);
      $("key-cancel").addEventListener("click", cancel);
      keyDialog.addEventListener("cancel", cancel);
      keyDialog.showModal();
      keyInput.focus();
    });
    return asking;
  }

  /** fetch() with the stored key; on 401, ask for one and try again. */
  async function api(url, options) {
    for (;;) {
      const key = currentKey();
      const headers = new Headers((options && options.headers) || {});
      if (key) {
        headers.set("authorization", `Bearer ${key}`);
      }
      const response = await fetch(url, { ...options, headers: headers });
      if (response.status !== 401) {
        return response;
      }
      if (currentKey() !== key) {
        continue; // another request was given a key meanwhile
      }
      if ((await askForKey(key !== null)) === null) {
        return response;
      }
    }
  }

  /** A JSON call: {status, body}; a network failure or unreadable answer is status 0. */
  async function call(url, body) {
    const options = { headers: { accept: "application/json" } };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await api(url, options);
    } catch (err) {
      return { status: 0, body: { error: `the service did not answer (${err.message})` } };
    }
    try {
      return { status: response.status, body: await response.json() };
    } catch (err) {
      return {
        status: response.status,
        body: { error: `unreadable answer (HTTP ${response.status})` },
      };
    }
  }

  $("key-forget").addEventListener("click", () => {
    try {
      window.sessionStorage.removeItem(config.keyStore);
    } catch (err) {
      // nothing stored
    }
    memoryKey = null;
    window.location.reload();
  });

  function notice(message, retry) {
    const box = $("notice");
    box.textContent = "";
    $("loading").hidden = true;
    if (!message) {
      return;
    }
    box.append(el("p", { class: "not-loaded" }, message));
    if (retry) {
      const button = el("button", { type: "button", id: "key-retry" }, "Enter an API key");
      button.addEventListener("click", () => start());
      box.append(button);
    }
  }

  function failure(answer, what) {
    if (answer.status === 401) {
      notice(`This server needs an API key to show ${what}.`, true);
    } else {
      notice(`Cannot show ${what}: ${answer.body.error || `HTTP ${answer.status}`}`);
    }
  }

  // ---- reading the model ----------------------------------------------------------------
  const pickerForm = $("model-picker-form");
  const picker = $("model-picker");

  async function start() {
    notice(null);
    $("loading").hidden = false;
    const listed = await call("/v1/models");
    if (listed.status !== 200) {
      failure(listed, "the models");
      return;
    }
    const models = listed.body.models;
    if (!models.length) {
      notice("This server serves no model.");
      return;
    }
    const wanted = new URLSearchParams(window.location.search).get("model");
    const name = wanted || models[0];
    picker.textContent = "";
    for (const m of models) {
      const option = el("option", { value: m }, m);
      option.selected = m === name;
      picker.append(option);
    }
    pickerForm.hidden = models.length < 2 && models.includes(name);
    const card = await call(`/v1/models/${encodeURIComponent(name)}`);
    if (card.status !== 200) {
      failure(card, `the model ${name}`);
      return;
    }
    notice(null);
    showModel(card.body);
    showKeyLine();
  }

  // ---- one model ------------------------------------------------------------------------
  let model = null;
  let features = [];
  let target = null;
  let classifier = false;
  let money = null;
  let scale = 1;
  const inputs = new Map();

  /** A target unit such as "$1000s" means dollars times 1000. */
  function display(unit) {
    const match = /^\$\s*([0-9][0-9,]*)s?$/.exec((unit || "").trim());
    scale = match ? Number(match[1].replace(/,/g, "")) : 1;
    money = match
      ? new Intl.NumberFormat("en-US", {
          style: "currency",
          currency: "USD",
          maximumFractionDigits: 0,
        })
      : null;
  }

  /** A regressor's prediction in plain units: MEDV 24.1 in $1000s reads "$24,100". */
  function plain(value) {
    if (money) {
      const step = scale >= 1000 ? 100 : 1;
      return money.format(Math.round((value * scale) / step) * step);
    }
    return `${number(value)}${target.unit ? " " + target.unit : ""}`;
  }

  function number(value) {
    return value.toFixed(2);
  }

  function count(n) {
    return n.toLocaleString("en-US");
  }

  function percent(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  function fieldId(name, index) {
    return /^[A-Za-z0-9_-]+$/.test(name) ? `f-${name}` : `f-${index}`;
  }

  function helpText(f) {
    const parts = f.unit ? [f.unit] : [];
    parts.push(`accepted: ${f.accepted}`);
    if (f.train_min !== null && f.train_max !== null && f.train_min !== undefined) {
      parts.push(`training data: ${f.train_min} to ${f.train_max}`);
    }
    if (f.nullable) {
      parts.push("may be unknown");
    }
    return parts.join("; ");
  }

  /** One labelled control per feature: a number input, or a select of its choices. */
  function drawField(f, index) {
    const id = fieldId(f.name, index);
    const box = el("div", { class: "field" });
    const label = el("label", { for: id });
    label.append(
      el("span", { class: "name" }, f.name),
      " ",
      el("span", { class: "meaning" }, f.description),
    );
    box.append(label);
    const described = `${id}-help ${id}-error`;
    const entry = { feature: f, id: id, choices: null, unknown: null };
    let control;
    const choices = f.categories || f.allowed;
    if (choices) {
      control = el("select", { id: id, name: f.name, "aria-describedby": described });
      control.append(el("option", { value: "" }, "choose…"));
      entry.choices = [undefined];
      if (f.nullable) {
        control.append(el("option", { value: "" }, "unknown"));
        entry.choices.push(null);
      }
      for (const choice of choices) {
        control.append(el("option", { value: String(choice) }, String(choice)));
        entry.choices.push(choice);
      }
    } else {
      control = el("input", {
        id: id,
        name: f.name,
        type: "number",
        step: "any",
        inputmode: "decimal",
        "aria-describedby": described,
      });
      if (f.min !== null) control.setAttribute("min", String(f.min));
      if (f.max !== null) control.setAttribute("max", String(f.max));
      if (f.train_min !== null && f.train_min !== undefined) {
        control.setAttribute("placeholder", String(f.train_min));
      }
    }
    entry.control = control;
    box.append(control);
    if (f.nullable && !choices) {
      const unknown = el("input", { type: "checkbox", id: `${id}-unknown`, class: "unknown" });
      unknown.addEventListener("change", () => {
        control.disabled = unknown.checked;
      });
      const unknownLabel = el("label", { for: `${id}-unknown`, class: "unknown" });
      unknownLabel.append(unknown, " unknown");
      unknown.setAttribute("aria-label", `Unknown ${f.name}`);
      box.append(unknownLabel);
      entry.unknown = unknown;
    }
    box.append(el("p", { class: "help", id: `${id}-help` }, helpText(f)));
    box.append(el("p", { class: "error", id: `${id}-error` }));
    entry.error = box.lastChild;
    inputs.set(f.name, entry);
    return box;
  }

  /** The value a field sends: a number, a category, null for unknown or empty. */
  function fieldValue(entry) {
    if (entry.choices) {
      const choice = entry.choices[entry.control.selectedIndex];
      return choice === undefined ? null : choice;
    }
    if (entry.unknown && entry.unknown.checked) {
      return null;
    }
    const text = entry.control.value.trim();
    return text === "" ? null : Number(text);
  }

  function setField(entry, value) {
    if (entry.choices) {
      const at = entry.choices.findIndex((c) =>
        value === null ? c === null : c !== undefined && c !== null && String(c) === String(value),
      );
      entry.control.selectedIndex = Math.max(at, 0);
      return;
    }
    if (entry.unknown) {
      entry.unknown.checked = value === null;
      entry.control.disabled = value === null;
    }
    entry.control.value = value === null ? "" : String(value);
  }

  function showModel(card) {
    model = card;
    features = card.features.map((f) => f.name);
    target = card.target || { name: "prediction", unit: "" };
    classifier = card.task === "classification";
    display(target.unit);
    document.title = `ml-service: ${card.name}`;
    const line = $("model-line");
    line.textContent = "";
    line.append("Model ", el("strong", {}, card.name), " version ", el("code", {}, card.version));
    if (card.description) {
      line.append(`: ${card.description}`);
    }

    inputs.clear();
    const fields = $("fields");
    fields.textContent = "";
    card.features.forEach((f, i) => fields.append(drawField(f, i)));

    const samples = $("samples");
    samples.textContent = "";
    (card.examples || []).forEach((example, i) => {
      const button = el("button", { type: "button", class: "sample" }, `Fill with sample ${i + 1}`);
      button.addEventListener("click", () => fillSample(example, i));
      samples.append(button);
    });
    samples.hidden = !samples.childElementCount;

    $("batch-columns").textContent = features.join(", ");
    $("batch-limits").textContent =
      `${count(config.batch.maxRows)} rows and ${Math.round(config.batch.maxBytes / 1048576)} MiB`;
    drawCard(card);
    $("loading").hidden = true;
    $("model").hidden = false;
  }

  function actualText(value) {
    if (value === undefined || value === null) {
      return "";
    }
    return classifier ? String(value) : plain(value);
  }

  function fillSample(example, i) {
    clearErrors();
    for (const entry of inputs.values()) {
      const value = example[entry.feature.name];
      setField(entry, value === undefined ? null : value);
    }
    const actual = actualText(example[target.name]);
    result.textContent = actual
      ? `Sample ${i + 1} filled in; its actual ${target.name} was ${actual}. Press Predict.`
      : `Sample ${i + 1} filled in.`;
  }

  // ---- the model card -------------------------------------------------------------------
  function drawCard(card) {
    const facts = $("facts");
    facts.textContent = "";
    const fact = (term, ...content) => {
      const dd = el("dd");
      dd.append(...content);
      facts.append(el("dt", {}, term), dd);
    };
    fact("Version", el("code", {}, card.version));
    if (card.trained_at) {
      fact("Trained", el("time", { datetime: card.trained_at }, card.trained_at));
    }
    const data = card.training_data;
    if (data) {
      fact(
        "Training data",
        el("code", {}, data.file),
        `, ${data.rows} rows (${data.test_rows} held out)`,
      );
    }
    if (card.algorithm) {
      fact("Algorithm", card.algorithm);
    }
    fact(
      "Task",
      classifier ? `classification into ${card.classes.map(String).join(", ")}` : "regression",
    );
    fact(
      "Target",
      target.name +
        (target.description ? `: ${target.description}` : "") +
        (target.unit ? ` (${target.unit})` : ""),
    );
    drawMetrics(card.metrics || {}, card.cv_metrics || {});

    $("report-line").hidden = !card.report;
    if (card.report) {
      $("report-link").setAttribute("href", card.report);
      $("report-key-note").hidden = currentKey() === null;
    }
    const plots = $("plots");
    plots.textContent = "";
    for (const plot of card.plots || []) {
      const figure = el("figure");
      const img = el("img", { alt: plot.alt });
      figure.append(img, el("figcaption", {}, plot.title));
      plots.append(figure);
      loadImage(img, plot.url);
    }

    const notes = $("notes");
    notes.textContent = "";
    if (card.intended_use) {
      notes.append(el("h3", { class: "sub" }, "Intended use"), el("p", {}, card.intended_use));
    }
    if (card.caveats && card.caveats.length) {
      const list = el("ul");
      for (const caveat of card.caveats) {
        list.append(el("li", {}, caveat));
      }
      notes.append(el("h3", { class: "sub" }, "Caveats"), list);
    }
  }

  /** Plots come through the API (with the key, when there is one) as blob: URLs. */
  async function loadImage(img, url) {
    try {
      const response = await api(url);
      if (response.ok) {
        img.src = URL.createObjectURL(await response.blob());
      }
    } catch (err) {
      // The figure keeps its caption and text alternative.
    }
  }

  function drawMetrics(held, cv) {
    const names = Object.keys(held);
    const wrap = $("metrics");
    wrap.textContent = "";
    if (!names.length) {
      return;
    }
    const table = el("table", { class: "metrics", id: "metrics-table" });
    table.append(el("caption", {}, "Quality"));
    const head = el("tr");
    head.append(el("th", { scope: "col" }, "split"));
    for (const name of names) {
      head.append(el("th", { scope: "col" }, config.metricLabels[name] || name));
    }
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    const row = (label, cells) => {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, label));
      for (const cell of cells) {
        tr.append(el("td", {}, cell));
      }
      body.append(tr);
    };
    const fmt = (v) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(3) : "n/a");
    row(
      "held-out",
      names.map((n) => fmt(held[n])),
    );
    if (names.some((n) => `${n}_mean` in cv)) {
      row(
        "cross-validation (mean ± sd)",
        names.map((n) => `${fmt(cv[`${n}_mean`])} ± ${fmt(cv[`${n}_std`])}`),
      );
    }
    table.append(thead, body);
    wrap.append(table);
  }

  // ---- one row --------------------------------------------------------------------------
  const form = $("predict-form");
  const result = $("result");

  function predictUrl() {
    return `/v1/models/${encodeURIComponent(model.name)}:predict`;
  }

  /** The feature a problem's location names, if any (e.g. ["instances", 0, "RM"]). */
  function featureOf(loc) {
    for (let i = loc.length - 1; i >= 0; i -= 1) {
      if (features.includes(loc[i])) {
        return loc[i];
      }
    }
    return null;
  }

  function clearErrors() {
    for (const entry of inputs.values()) {
      entry.control.removeAttribute("aria-invalid");
      entry.error.textContent = "";
    }
    result.textContent = "";
    result.className = "";
  }

  function showPrediction(value, probabilities) {
    result.textContent = "";
    result.className = "ok";
    if (!classifier) {
      const unit = target.unit ? ` (${target.unit})` : "";
      result.append(
        el("p", { class: "price", id: "prediction" }, plain(value)),
        el("p", { class: "raw" }, `Predicted ${target.name} ${number(value)}${unit}`),
      );
      return;
    }
    result.append(
      el("p", { class: "price", id: "prediction" }, String(value)),
      el("p", { class: "raw" }, `Predicted ${target.name}: ${value}`),
    );
    const table = el("table", { id: "probabilities" });
    table.append(el("caption", {}, "Probability of each class"));
    const body = el("tbody");
    for (const cls of model.classes) {
      const p = probabilities[String(cls)];
      const tr = el("tr", String(cls) === String(value) ? { class: "chosen" } : {});
      tr.append(el("th", { scope: "row" }, String(cls)), el("td", { class: "num" }, percent(p)));
      body.append(tr);
    }
    table.append(body);
    result.append(table);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const instance = {};
    for (const [name, entry] of inputs) {
      instance[name] = fieldValue(entry);
    }
    result.textContent = "Predicting…";
    const answer = await call(predictUrl(), { instances: [instance] });
    if (answer.status === 200) {
      const probabilities = answer.body.probabilities ? answer.body.probabilities[0] : null;
      showPrediction(answer.body.predictions[0], probabilities);
      return;
    }
    const general = [];
    for (const problem of answer.body.details || []) {
      const name = featureOf(problem.loc || []);
      if (name === null) {
        general.push(problem.msg);
        continue;
      }
      const entry = inputs.get(name);
      entry.control.setAttribute("aria-invalid", "true");
      entry.error.textContent = entry.error.textContent
        ? `${entry.error.textContent}; ${problem.msg}`
        : problem.msg;
    }
    result.textContent = "";
    result.className = "failed";
    result.append(
      el(
        "p",
        { id: "form-error" },
        [answer.body.error || `HTTP ${answer.status}`, ...general].join(": "),
      ),
    );
    // Focus the first field in form order that has a problem.
    const first = [...inputs.values()].find((entry) => entry.control.hasAttribute("aria-invalid"));
    if (first) {
      first.control.focus();
    }
  });

  // ---- CSV batch ------------------------------------------------------------------------
  const batchForm = $("batch-form");
  const fileInput = $("csv-file");
  const batchStatus = $("batch-status");
  const problemList = $("batch-problems");
  const tableWrap = $("batch-table");
  const download = $("batch-download");
  const SHOWN_ROWS = 1000;
  const missing = new Set(config.missing);
  let lastBatch = null;

  /** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF line ends; each row with its line. */
  function parseCsv(text) {
    const rows = [];
    let row = [];
    let cell = "";
    let quoted = false;
    let line = 1;
    let start = 1;
    const end = () => {
      row.push(cell);
      if (row.some((value) => value.trim() !== "")) {
        rows.push({ cells: row, line: start });
      }
      row = [];
      cell = "";
    };
    for (let i = 0; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          cell += '"';
          i += 1;
        } else if (c === '"') {
          quoted = false;
        } else {
          if (c === "\n") line += 1;
          cell += c;
        }
      } else if (c === '"') {
        quoted = true;
      } else if (c === ",") {
        row.push(cell);
        cell = "";
      } else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") {
          i += 1;
        }
        end();
        line += 1;
        start = line;
      } else {
        cell += c;
      }
    }
    if (cell !== "" || row.length) {
      end();
    }
    return rows;
  }

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  /** The JSON value for one cell: missing as null, a category as its text, numbers as numbers
   * (anything else as the text, for the service to refuse by name). */
  function cellValue(text, feature) {
    const trimmed = text.trim();
    if (missing.has(trimmed)) {
      return null;
    }
    if (feature.kind === "categorical") {
      return trimmed;
    }
    const value = Number(trimmed);
    return Number.isFinite(value) ? value : trimmed;
  }

  /** The instances in requests within the row and body limits. */
  function chunks(instances) {
    const groups = [];
    let group = [];
    let bytes = 0;
    const budget = config.batch.bodyBytes * 0.9;
    instances.forEach((instance, i) => {
      const size = JSON.stringify(instance).length + 1;
      if (group.length && (group.length >= config.batch.rowsPerRequest || bytes + size > budget)) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
      group.push(i);
      bytes += size;
    });
    if (group.length) {
      groups.push(group);
    }
    return groups;
  }

  /** Predict every row; rows with problems get reasons, the others predictions. */
  async function predictAll(instances) {
    const outcome = instances.map(() => ({ prediction: null, probabilities: null, problems: [] }));
    let done = 0;
    for (const indices of chunks(instances)) {
      let pending = indices;
      for (let attempt = 0; attempt < 2 && pending.length; attempt += 1) {
        const answer = await call(predictUrl(), { instances: pending.map((i) => instances[i]) });
        if (answer.status === 200) {
          answer.body.predictions.forEach((value, k) => {
            outcome[pending[k]].prediction = value;
            if (answer.body.probabilities) {
              outcome[pending[k]].probabilities = answer.body.probabilities[k];
            }
          });
          break;
        }
        const bad = new Set();
        for (const problem of answer.body.details || []) {
          const loc = problem.loc || [];
          if (loc[0] === "instances" && Number.isInteger(loc[1]) && loc[1] < pending.length) {
            const row = pending[loc[1]];
            bad.add(row);
            const name = featureOf(loc);
            const named = name && !problem.msg.startsWith(name) ? `${name}: ` : "";
            outcome[row].problems.push(named + problem.msg);
          }
        }
        if (answer.status !== 422 || bad.size === 0 || attempt === 1) {
          for (const row of pending) {
            if (!bad.has(row)) {
              outcome[row].problems.push(answer.body.error || `HTTP ${answer.status}`);
            }
          }
          break;
        }
        pending = pending.filter((row) => !bad.has(row));
      }
      done += indices.length;
      batchStatus.textContent = `Predicted ${done} of ${instances.length} rows…`;
    }
    return outcome;
  }

  /** The columns a batch adds after the features, and each row's cells for them. */
  function outputColumns() {
    if (!classifier) {
      return { names: [target.name], cells: (o) => [o.prediction === null ? "" : o.prediction] };
    }
    const classes = model.classes.map(String);
    return {
      names: [target.name, ...classes.map((c) => `probability_${c}`)],
      cells: (o) => [
        o.prediction === null ? "" : o.prediction,
        ...classes.map((c) => (o.probabilities ? o.probabilities[c] : "")),
      ],
    };
  }

  function renderBatch(rows, outcome, ignored) {
    problemList.textContent = "";
    tableWrap.textContent = "";
    const good = outcome.filter((o) => o.prediction !== null).length;
    const failed = outcome.length - good;
    batchStatus.textContent =
      `${good} of ${outcome.length} rows predicted` +
      (failed ? `; ${failed} with problems, listed below` : "") +
      (ignored.length ? `. Ignored columns: ${ignored.join(", ")}` : "") +
      ".";
    outcome.forEach((o, i) => {
      if (o.problems.length) {
        problemList.append(
          el("li", {}, `Row ${i + 1} (line ${rows[i].line}): ${o.problems.join("; ")}`),
        );
      }
    });
    const output = outputColumns();
    const table = el("table", { id: "batch-results" });
    table.append(el("caption", {}, "Predictions"));
    const head = el("tr");
    const shownColumns = classifier ? output.names : [target.name, "value"];
    for (const name of ["row", ...features, ...shownColumns, "problems"]) {
      head.append(el("th", { scope: "col" }, name));
    }
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    outcome.slice(0, SHOWN_ROWS).forEach((o, i) => {
      const tr = el("tr", o.problems.length ? { class: "bad" } : {});
      tr.append(el("td", {}, String(i + 1)));
      for (const value of rows[i].values) {
        tr.append(el("td", {}, value));
      }
      const none = o.prediction === null;
      if (classifier) {
        tr.append(el("td", {}, none ? "" : String(o.prediction)));
        for (const cls of model.classes) {
          tr.append(
            el(
              "td",
              { class: "num" },
              o.probabilities ? percent(o.probabilities[String(cls)]) : "",
            ),
          );
        }
      } else {
        tr.append(el("td", { class: "num" }, none ? "" : number(o.prediction)));
        tr.append(el("td", { class: "num" }, none ? "" : plain(o.prediction)));
      }
      tr.append(el("td", { class: "problems" }, o.problems.join("; ")));
      body.append(tr);
    });
    table.append(thead, body);
    tableWrap.append(table);
    if (outcome.length > SHOWN_ROWS) {
      tableWrap.append(
        el("p", {}, `The first ${SHOWN_ROWS} rows are shown; the download has all of them.`),
      );
    }
    const lines = [[...features, ...output.names, "problems"].map(csvCell).join(",")];
    outcome.forEach((o, i) => {
      lines.push(
        [...rows[i].values, ...output.cells(o), o.problems.join("; ")].map(csvCell).join(","),
      );
    });
    lastBatch = lines.join("\r\n") + "\r\n";
    download.hidden = false;
  }

  batchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    problemList.textContent = "";
    tableWrap.textContent = "";
    download.hidden = true;
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      batchStatus.textContent = "Choose a CSV file first.";
      fileInput.focus();
      return;
    }
    const limits = config.batch;
    const larger = "; use ml-service score for larger files.";
    if (file.size > limits.maxBytes) {
      batchStatus.textContent =
        `The file has ${count(file.size)} bytes; ` +
        `the page takes at most ${count(limits.maxBytes)}${larger}`;
      return;
    }
    const table = parseCsv(await file.text());
    if (table.length < 2) {
      batchStatus.textContent = "The file needs a header row and at least one data row.";
      return;
    }
    if (table.length - 1 > limits.maxRows) {
      batchStatus.textContent =
        `The file has ${count(table.length - 1)} rows; ` +
        `the page takes at most ${count(limits.maxRows)}${larger}`;
      return;
    }
    const header = table[0].cells.map((name) => name.trim());
    const positions = features.map((name) => header.indexOf(name));
    const absent = features.filter((name, k) => positions[k] < 0);
    if (absent.length) {
      const plural = absent.length > 1 ? "s" : "";
      batchStatus.textContent = `The file lacks the column${plural} ${absent.join(", ")}.`;
      return;
    }
    const ignored = header.filter((name) => name && !features.includes(name));
    const rows = table.slice(1).map((row) => ({
      line: row.line,
      values: positions.map((p) => (row.cells[p] || "").trim()),
    }));
    const instances = rows.map((row) => {
      const instance = {};
      model.features.forEach((f, k) => {
        instance[f.name] = cellValue(row.values[k], f);
      });
      return instance;
    });
    batchStatus.textContent = `Predicting ${instances.length} rows…`;
    renderBatch(rows, await predictAll(instances), ignored);
  });

  download.addEventListener("click", () => {
    if (lastBatch === null) {
      return;
    }
    const url = URL.createObjectURL(new Blob([lastBatch], { type: "text/csv" }));
    const link = el("a", { href: url, download: `${model.name}-predictions.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  start();
})();
