// The home page's behaviour: one-house form, sample houses, CSV batch with download.
// Everything goes through the service's own KServe V1 endpoint; nothing leaves this host.
"use strict";

(function () {
  const dataNode = document.getElementById("page-data");
  if (!dataNode) {
    return;
  }
  const model = JSON.parse(dataNode.textContent);
  const features = model.features;
  const target = model.target;
  const money = target.currency
    ? new Intl.NumberFormat("en-US", {
        style: "currency",
        currency: target.currency,
        maximumFractionDigits: 0,
      })
    : null;

  /** A prediction in plain units: MEDV 24.1 in $1000s reads "$24,100". */
  function plain(value) {
    if (money) {
      const amount = value * target.scale;
      const step = target.scale >= 1000 ? 100 : 1;
      return money.format(Math.round(amount / step) * step);
    }
    return `${value.toFixed(2)}${target.unit ? " " + target.unit : ""}`;
  }

  function raw(value) {
    return `${target.name} ${value.toFixed(2)}${target.unit ? " (" + target.unit + ")" : ""}`;
  }

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

  /** The JSON value to send for one cell or field: numbers as numbers, the rest as typed. */
  function cellValue(text) {
    const trimmed = (text || "").trim();
    if (trimmed === "") {
      return null;
    }
    const number = Number(trimmed);
    return Number.isFinite(number) ? number : trimmed;
  }

  async function postInstances(instances) {
    let response;
    try {
      response = await fetch(model.predictUrl, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ instances: instances }),
      });
    } catch (err) {
      return { status: 0, body: { error: `the service did not answer (${err.message})` } };
    }
    let body;
    try {
      body = await response.json();
    } catch (err) {
      body = { error: `unreadable answer (HTTP ${response.status})` };
    }
    return { status: response.status, body: body };
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

  // ---- one house ----------------------------------------------------------------------
  const form = document.getElementById("predict-form");
  const result = document.getElementById("result");

  function field(name) {
    return document.getElementById(`f-${name}`);
  }

  function clearErrors() {
    for (const name of features) {
      const input = field(name);
      input.removeAttribute("aria-invalid");
      document.getElementById(`f-${name}-error`).textContent = "";
    }
    result.textContent = "";
    result.className = "";
  }

  function showResult(value, note) {
    result.textContent = "";
    result.className = "ok";
    result.append(
      el("p", { class: "price", id: "prediction" }, plain(value)),
      el("p", { class: "raw" }, `Predicted ${raw(value)}${note ? ". " + note : ""}`),
    );
  }

  function showError(message) {
    result.textContent = "";
    result.className = "failed";
    result.append(el("p", { id: "form-error" }, message));
  }

  for (const button of document.querySelectorAll("button.sample")) {
    button.addEventListener("click", () => {
      const example = model.examples[Number(button.dataset.example)];
      clearErrors();
      for (const name of features) {
        field(name).value = String(example[name]);
      }
      const actual = example[target.name];
      result.className = "";
      result.textContent =
        actual === undefined
          ? "Sample house filled in."
          : `Sample house filled in; its actual value was ${plain(actual)}. Press Predict.`;
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const instance = {};
    for (const name of features) {
      instance[name] = cellValue(field(name).value);
    }
    result.textContent = "Predicting…";
    const answer = await postInstances([instance]);
    if (answer.status === 200) {
      showResult(answer.body.predictions[0]);
      return;
    }
    const general = [];
    for (const problem of answer.body.details || []) {
      const name = featureOf(problem.loc || []);
      if (name === null) {
        general.push(problem.msg);
        continue;
      }
      const input = field(name);
      input.setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`f-${name}-error`);
      slot.textContent = slot.textContent ? `${slot.textContent}; ${problem.msg}` : problem.msg;
    }
    showError([answer.body.error || `HTTP ${answer.status}`, ...general].join(": "));
    // Focus the first field in form order that has a problem.
    const first = features.map(field).find((input) => input.hasAttribute("aria-invalid"));
    if (first) {
      first.focus();
    }
  });

  // ---- CSV batch ----------------------------------------------------------------------
  const batchForm = document.getElementById("batch-form");
  const fileInput = document.getElementById("csv-file");
  const batchStatus = document.getElementById("batch-status");
  const problemList = document.getElementById("batch-problems");
  const tableWrap = document.getElementById("batch-table");
  const download = document.getElementById("batch-download");
  const SHOWN_ROWS = 1000;
  let lastBatch = null;

  /** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF line ends. */
  function parseCsv(text) {
    const rows = [];
    let row = [];
    let cell = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          cell += '"';
          i += 1;
        } else if (c === '"') {
          quoted = false;
        } else {
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
        row.push(cell);
        rows.push(row);
        row = [];
        cell = "";
      } else {
        cell += c;
      }
    }
    if (cell !== "" || row.length) {
      row.push(cell);
      rows.push(row);
    }
    return rows.filter((r) => r.some((value) => value.trim() !== ""));
  }

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  /** Predict `instances` in chunks; rows with problems get reasons, the others predictions. */
  async function predictAll(instances) {
    const outcome = instances.map(() => ({ prediction: null, problems: [] }));
    for (let start = 0; start < instances.length; start += model.batchRows) {
      const indices = [];
      for (let i = start; i < Math.min(start + model.batchRows, instances.length); i += 1) {
        indices.push(i);
      }
      let pending = indices;
      for (let attempt = 0; attempt < 2 && pending.length; attempt += 1) {
        const answer = await postInstances(pending.map((i) => instances[i]));
        batchStatus.textContent = `Predicted ${Math.min(start + model.batchRows, instances.length)} of ${instances.length} rows…`;
        if (answer.status === 200) {
          answer.body.predictions.forEach((value, k) => {
            outcome[pending[k]].prediction = value;
          });
          pending = [];
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
          pending = [];
          break;
        }
        pending = pending.filter((row) => !bad.has(row));
      }
    }
    return outcome;
  }

  function renderBatch(header, rows, lines, outcome, ignored) {
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
          el("li", {}, `Row ${i + 1} (line ${lines[i]}): ${o.problems.join("; ")}`),
        );
      }
    });
    const table = el("table", { id: "batch-results" });
    table.append(el("caption", {}, "Predictions"));
    const head = el("tr");
    for (const name of ["row", ...features, target.name, "value", "problems"]) {
      head.append(el("th", { scope: "col" }, name));
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    outcome.slice(0, SHOWN_ROWS).forEach((o, i) => {
      const tr = el("tr", o.problems.length ? { class: "bad" } : {});
      tr.append(el("td", {}, String(i + 1)));
      for (const value of rows[i]) {
        tr.append(el("td", {}, value));
      }
      tr.append(el("td", { class: "num" }, o.prediction === null ? "" : o.prediction.toFixed(2)));
      tr.append(el("td", { class: "num" }, o.prediction === null ? "" : plain(o.prediction)));
      tr.append(el("td", {}, o.problems.join("; ")));
      body.append(tr);
    });
    table.append(body);
    tableWrap.append(table);
    if (outcome.length > SHOWN_ROWS) {
      tableWrap.append(
        el("p", {}, `The first ${SHOWN_ROWS} rows are shown; the download has all of them.`),
      );
    }
    const csvLines = [[...features, target.name, "problems"].map(csvCell).join(",")];
    outcome.forEach((o, i) => {
      csvLines.push(
        [...rows[i], o.prediction === null ? "" : o.prediction, o.problems.join("; ")]
          .map(csvCell)
          .join(","),
      );
    });
    lastBatch = csvLines.join("\r\n") + "\r\n";
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
    const table = parseCsv(await file.text());
    if (table.length < 2) {
      batchStatus.textContent = "The file needs a header row and at least one data row.";
      return;
    }
    const header = table[0].map((name) => name.trim());
    const positions = features.map((name) => header.indexOf(name));
    const missing = features.filter((name, k) => positions[k] < 0);
    if (missing.length) {
      batchStatus.textContent = `The file lacks the column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}.`;
      return;
    }
    const ignored = header.filter((name) => name && !features.includes(name));
    const rows = table.slice(1).map((cells) => positions.map((p) => (cells[p] || "").trim()));
    const lines = rows.map((_, i) => i + 2);
    const instances = rows.map((cells) => {
      const instance = {};
      features.forEach((name, k) => {
        instance[name] = cellValue(cells[k]);
      });
      return instance;
    });
    batchStatus.textContent = `Predicting ${instances.length} rows…`;
    const outcome = await predictAll(instances);
    renderBatch(header, rows, lines, outcome, ignored);
  });

  download.addEventListener("click", () => {
    if (lastBatch === null) {
      return;
    }
    const url = URL.createObjectURL(new Blob([lastBatch], { type: "text/csv" }));
    const link = el("a", { href: url, download: `${model.model}-predictions.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
})();
