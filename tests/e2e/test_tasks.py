"""Tasks people give a code interpreter, sent the way today's LibreChat sends them.

Each task is what a model writes for an ordinary request (a Word report, a
deck, an invoice, a regression, a chart titled in Japanese, ...): mostly a
`python3` heredoc through `bash`, as LibreChat's bash_tool sends it, some
Node, C, R and shell.  Each one checks a real result on this side, from the
downloaded file: a number computed from the data, the file's type by its
magic bytes, its pixel size, its pages (pdfinfo) or fonts (pdffonts), its
zip members.  No task may print a "[sandbox]" hint: that would mean the
model's first attempt failed on a missing module.

`uses` names what a task proves present; test_readme_lists_what_the_tasks_use
checks each is listed in inventory.py, from which README's "What is
installed" section is generated.  The run writes a table (task, result,
seconds, uses) to $CIP_TASKS_REPORT (default /tmp/cip-tasks-report.tsv).
"""
import io
import json
import os
import re
import struct
import subprocess
import tempfile
import time
import zipfile

import pytest

import inventory
from conftest import Daemon
from test_upload import USER, ref, upload

REPORT = os.environ.get("CIP_TASKS_REPORT", "/tmp/cip-tasks-report.tsv")
TASKS = {}
RESULTS = {}


def task(*uses):
    """Register a task; uses: import names, node:<package>, tool:<command>."""
    def register(fn):
        TASKS[fn.__name__] = (fn, uses)
        return fn
    return register


def py(src, script=None):
    """A python3 heredoc, as a model writes it (optionally into a script first)."""
    if script:
        return f"cat > {script} << 'EOF'\n{src.strip()}\nEOF\npython3 {script}\n"
    return f"python3 << 'EOF'\n{src.strip()}\nEOF\n"


class Session:
    """One conversation: its runs, and the files they reported."""

    def __init__(self, daemon):
        self.d, self.sid, self.files, self.refs = daemon, None, {}, []

    def attach(self, name, data):
        up = upload(self.d, files=[("file", name, data)]).json()
        self.refs.append(ref(up["storage_session_id"], up["files"][0]["fileId"], name))

    def run(self, code, lang="bash", ok=True):
        extra = {"files": self.refs, "user_id": USER} if self.refs else {}
        r = self.d.exec(code, lang=lang, session=self.sid, **extra)
        self.sid = r["session_id"]
        for f in r["files"]:
            self.files[f["name"]] = f
        assert "[sandbox]" not in r["stderr"], r["stderr"][-3000:]
        if ok:
            assert r["code"] == 0, f"exit {r['code']}\n{r['stdout'][-1500:]}\n{r['stderr'][-3000:]}"
        return r

    def get(self, name):
        assert name in self.files, f"{name} not among the outputs {sorted(self.files)}"
        f = self.files[name]
        got = self.d.request("GET", f"/download/{f['storage_session_id']}/{f['id']}")
        assert got.status == 200, got.raw[:300]
        return got.raw


# What a downloaded file is, checked here, not in the sandbox.

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "zip": b"PK\x03\x04",
         "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "sqlite": b"SQLite format 3\0"}


def kind(data, k):
    assert data.startswith(MAGIC[k]), f"not {k}: {data[:16]!r}"
    return data


def png_size(data):
    kind(data, "png")
    return struct.unpack(">II", data[16:24])


def image(data):
    from PIL import Image
    return Image.open(io.BytesIO(data))


def poppler(tool, data, *args):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(kind(data, "pdf"))
        f.flush()
        r = subprocess.run([tool, *args, f.name, *(["-"] if tool == "pdftotext" else [])],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def pdf_pages(data):
    return int(re.search(r"^Pages:\s+(\d+)", poppler("pdfinfo", data), re.M).group(1))


def pdf_text(data):
    return poppler("pdftotext", data, "-layout")


def pdf_fonts(data):
    return poppler("pdffonts", data)


def members(data):
    return zipfile.ZipFile(io.BytesIO(kind(data, "zip"))).namelist()


def member(data, name):
    return zipfile.ZipFile(io.BytesIO(data)).read(name).decode("utf-8")


def no_missing_glyphs(r):
    assert "missing from current font" not in r["stderr"], r["stderr"][-2000:]
    assert "missing from font" not in r["stderr"], r["stderr"][-2000:]


def tiny_pdf(lines):
    """A one-page PDF with these lines of Helvetica, as a user would attach."""
    text = "BT /F1 14 Tf 72 720 Td 18 TL " + " ".join(
        f"({ln}) Tj T*" for ln in lines) + " ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offs = "%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{o:010d} 00000 n \n" for o in offs)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


SALES_CSV = ("date,region,product,units,price\n" + "".join(
    f"2024-{m:02d}-{d:02d},{r},{p},{(m * 7 + d * 3 + len(r) * len(p)) % 40 + 1},{pr}\n"
    for m in range(1, 13) for d in (3, 17)
    for r in ("North", "South", "West") for p, pr in (("Widget", 2.5), ("Gadget", 10.0)))).encode()


def sales_totals():
    """Revenue by region, computed here from the same rows."""
    tot = {}
    for line in SALES_CSV.decode().splitlines()[1:]:
        _, region, _, units, price = line.split(",")
        tot[region] = tot.get(region, 0) + int(units) * float(price)
    return tot


# Documents

@task("docx", "matplotlib", "pandas")
def word_report_with_table_and_chart(s):
    s.run(py("""
import pandas as pd
import matplotlib.pyplot as plt
from docx import Document
from docx.shared import Inches

df = pd.DataFrame({"Quarter": ["Q1", "Q2", "Q3", "Q4"], "Revenue": [120, 135, 150, 172]})
df.plot(x="Quarter", y="Revenue", kind="bar", legend=False)
plt.title("Revenue by quarter")
plt.savefig("revenue.png", dpi=100)

doc = Document()
doc.add_heading("Quarterly Report 2024", 0)
doc.add_paragraph(f"Total revenue: {df.Revenue.sum()} k$")
table = doc.add_table(rows=1, cols=2)
table.style = "Light Grid Accent 1"
table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Quarter", "Revenue"
for q, r in df.itertuples(index=False):
    row = table.add_row().cells
    row[0].text, row[1].text = q, str(r)
doc.add_picture("revenue.png", width=Inches(5))
doc.save("quarterly_report.docx")
print("saved")
"""))
    data = s.get("quarterly_report.docx")
    names = members(data)
    assert any(n.startswith("word/media/") and n.endswith(".png") for n in names), names
    xml = member(data, "word/document.xml")
    assert "Quarterly Report 2024" in xml and "Total revenue: 577 k$" in xml
    assert xml.count("<w:tr") == 5, xml.count("<w:tr")


@task("docx", "tool:soffice", "tool:pdftotext")
def word_to_pdf_with_libreoffice(s):
    r = s.run(py("""
from docx import Document
doc = Document()
doc.add_heading("Meeting minutes", 1)
for i in range(1, 61):
    doc.add_paragraph(f"Item {i}: discussed and agreed.")
doc.save("minutes.docx")
""") + "soffice --headless --convert-to pdf minutes.docx && pdfinfo minutes.pdf | grep Pages\n"
      "ls -A\n")
    assert ".config" not in r["stdout"].split(), r["stdout"]   # LibreOffice's profile is in /tmp
    pdf = s.get("minutes.pdf")
    assert pdf_pages(pdf) >= 2
    text = pdf_text(pdf)
    assert "Meeting minutes" in text and "Item 60: discussed and agreed." in text


@task("odf", "tool:soffice")
def powerpoint_from_python_via_odp(s):
    """python-pptx is not here; the hint's route: odfpy, then LibreOffice."""
    s.run(py("""
from odf.opendocument import OpenDocumentPresentation
from odf.style import Style, MasterPage, PageLayout, PageLayoutProperties
from odf.draw import Page, Frame, TextBox
from odf.text import P

doc = OpenDocumentPresentation()
layout = PageLayout(name="L")
layout.addElement(PageLayoutProperties(pagewidth="28cm", pageheight="15.75cm"))
doc.automaticstyles.addElement(layout)
master = MasterPage(name="M", pagelayoutname=layout)
doc.masterstyles.addElement(master)
for i, title in enumerate(["Project Phoenix", "Timeline", "Budget"], 1):
    page = Page(masterpagename=master, name=f"slide{i}")
    frame = Frame(width="24cm", height="3cm", x="2cm", y="2cm")
    box = TextBox()
    box.addElement(P(text=title))
    frame.addElement(box)
    page.addElement(frame)
    doc.presentation.addElement(page)
doc.save("deck.odp")
""", "make_deck.py") + "soffice --headless --convert-to pptx deck.odp >/dev/null && ls -l deck.pptx\n")
    names = members(s.get("deck.pptx"))
    slides = sorted(n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n))
    assert len(slides) == 3, names
    assert "Timeline" in member(s.get("deck.pptx"), "ppt/slides/slide2.xml")


@task("node:pptxgenjs")
def powerpoint_with_pptxgenjs(s):
    s.run("""
const pptxgen = require("pptxgenjs");
const pptx = new pptxgen();
pptx.layout = "LAYOUT_WIDE";
for (const t of ["Sales review", "Regions", "Outlook"]) {
  const slide = pptx.addSlide();
  slide.addText(t, { x: 0.5, y: 0.4, fontSize: 32, bold: true });
}
const chart = pptx.addSlide();
chart.addChart(pptx.ChartType.bar, [{ name: "Units", labels: ["N", "S", "W"], values: [12, 19, 7] }],
  { x: 1, y: 1, w: 8, h: 4 });
pptx.writeFile({ fileName: "sales_review.pptx" }).then(f => console.log("wrote", f));
""", lang="js")
    names = members(s.get("sales_review.pptx"))
    assert len([n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)]) == 4, names
    assert any(n.startswith("ppt/charts/chart") for n in names), names


@task("reportlab", "tool:pdftotext")
def pdf_invoice_with_reportlab(s):
    s.run(py("""
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import SimpleDocTemplate, Paragraph, Table, TableStyle, Spacer

items = [("Consulting", 10, 95.00), ("Hosting", 12, 19.99), ("Domain", 1, 44.62)]
total = sum(q * p for _, q, p in items)
styles = getSampleStyleSheet()
rows = [["Item", "Qty", "Price", "Amount"]] + [
    [n, str(q), f"{p:,.2f}", f"{q * p:,.2f}"] for n, q, p in items] + [["", "", "Total", f"{total:,.2f}"]]
t = Table(rows)
t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.lightblue)]))
doc = SimpleDocTemplate("invoice_1042.pdf", pagesize=A4)
doc.build([Paragraph("Invoice #1042", styles["Title"]), Spacer(1, 12), t])
print(f"total {total:.2f}")
"""))
    pdf = s.get("invoice_1042.pdf")
    assert pdf_pages(pdf) == 1
    text = pdf_text(pdf)
    assert "Invoice #1042" in text and re.search(r"Total\s+1,234\.50", text), text


@task("pypdf")
def text_out_of_an_attached_pdf(s):
    s.attach("contract.pdf", tiny_pdf(["Service Agreement", "Fee: 4,200 EUR per month",
                                       "Term: 24 months"]))
    r = s.run(py("""
import re
from pypdf import PdfReader
reader = PdfReader("contract.pdf")
text = "\\n".join(page.extract_text() for page in reader.pages)
fee = int(re.search(r"Fee: ([\\d,]+)", text).group(1).replace(",", ""))
months = int(re.search(r"Term: (\\d+)", text).group(1))
print(len(reader.pages), "page(s)")
print("contract value:", fee * months)
"""))
    assert "1 page(s)" in r["stdout"] and "contract value: 100800" in r["stdout"], r["stdout"]


@task("fitz")
def render_pdf_page_with_pymupdf(s):
    s.attach("scan.pdf", tiny_pdf(["Quarterly figures", "Net income 88,000"]))
    r = s.run(py("""
import fitz
doc = fitz.open("scan.pdf")
page = doc[0]
print(page.search_for("Net income")[0] is not None, page.get_text().count("88,000"))
page.get_pixmap(matrix=fitz.Matrix(2, 2)).save("page1.png")
"""))
    assert r["stdout"].split() == ["True", "1"], r["stdout"]
    assert png_size(s.get("page1.png")) == (1224, 1584)


@task("pypdf", "reportlab", "tool:qpdf")
def merge_and_split_pdfs(s):
    s.run(py("""
from reportlab.pdfgen import canvas
from pypdf import PdfWriter, PdfReader
for name, pages in (("a.pdf", 2), ("b.pdf", 3)):
    c = canvas.Canvas(name)
    for i in range(pages):
        c.drawString(72, 720, f"{name} page {i + 1}")
        c.showPage()
    c.save()
w = PdfWriter()
for name in ("a.pdf", "b.pdf"):
    for p in PdfReader(name).pages:
        w.add_page(p)
with open("merged.pdf", "wb") as f:
    w.write(f)
""") + "qpdf merged.pdf --pages . 4-5 -- last_two.pdf\n")
    assert pdf_pages(s.get("merged.pdf")) == 5
    last = s.get("last_two.pdf")
    assert pdf_pages(last) == 2 and "b.pdf page 3" in pdf_text(last)


@task("markdown")
def markdown_to_html(s):
    s.run(py("""
import markdown
md = '''# Release notes

| Version | Date |
|---------|------|
| 1.2.0   | 2024-05-01 |

```python
print("hi")
```
'''
html = markdown.markdown(md, extensions=["tables", "fenced_code", "toc"])
open("notes.html", "w").write("<!doctype html><meta charset=utf-8>" + html)
"""))
    html = s.get("notes.html").decode()
    assert '<h1 id="release-notes">Release notes</h1>' in html, html
    assert "<td>1.2.0</td>" in html and 'class="language-python"' in html, html


@task("tool:pandoc", "tool:pdflatex", "tool:pdffonts")
def markdown_report_to_pdf_with_pandoc(s):
    s.run("""cat > report.md << 'EOF'
---
title: Experiment Summary
---

# Results

- Trials: 12
- Mean response: $\\bar{x} = 4.2$

The variance is $\\sigma^2 = \\frac{1}{n}\\sum_i (x_i - \\bar{x})^2$.
EOF
pandoc report.md -o report.pdf && pandoc report.md -o report.docx && echo done
""")
    pdf = s.get("report.pdf")
    assert pdf_pages(pdf) == 1
    assert "Experiment Summary" in pdf_text(pdf)
    assert "CMMI" in pdf_fonts(pdf) or "LMMathItalic" in pdf_fonts(pdf), pdf_fonts(pdf)
    assert "Trials: 12" in member(s.get("report.docx"), "word/document.xml")


@task("weasyprint", "jinja2")
def html_template_to_pdf_with_weasyprint(s):
    s.run(py("""
from jinja2 import Template
from weasyprint import HTML
rows = [{"name": n, "score": v} for n, v in [("Ana", 91), ("Ben", 78), ("Chloé", 85)]]
html = Template('''<html><head><style>
  body { font-family: sans-serif; } td, th { border: 1px solid #999; padding: 4px; }
</style></head><body><h1>Class results</h1><table>
<tr><th>Name</th><th>Score</th></tr>
{% for r in rows %}<tr><td>{{ r.name }}</td><td>{{ r.score }}</td></tr>{% endfor %}
</table><p>Average: {{ "%.1f"|format(rows|sum(attribute="score") / rows|length) }}</p></body></html>''').render(rows=rows)
HTML(string=html).write_pdf("results.pdf")
""", "report.py"))
    text = pdf_text(s.get("results.pdf"))
    assert "Class results" in text and "Chloé" in text and "Average: 84.7" in text, text


@task("openpyxl")
def excel_with_formulas_and_chart(s):
    s.run(py("""
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
wb = Workbook()
ws = wb.active
ws.title = "Budget"
ws.append(["Category", "Amount"])
for row in [("Rent", 1200), ("Food", 450), ("Transport", 120), ("Leisure", 200)]:
    ws.append(row)
ws["A6"], ws["B6"] = "Total", "=SUM(B2:B5)"
chart = BarChart()
chart.title = "Monthly budget"
chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=5), titles_from_data=True)
chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=5))
ws.add_chart(chart, "D2")
wb.save("budget.xlsx")
"""))
    data = s.get("budget.xlsx")
    assert "xl/charts/chart1.xml" in members(data)
    assert "<f>SUM(B2:B5)</f>" in member(data, "xl/worksheets/sheet1.xml")


@task("xlsxwriter", "pandas")
def pandas_to_excel_with_xlsxwriter(s):
    s.attach("sales.csv", SALES_CSV)
    r = s.run(py("""
import pandas as pd
df = pd.read_csv("sales.csv", parse_dates=["date"])
df["revenue"] = df.units * df.price
pivot = df.pivot_table(index="region", columns="product", values="revenue", aggfunc="sum")
with pd.ExcelWriter("sales_summary.xlsx", engine="xlsxwriter") as xw:
    pivot.to_excel(xw, sheet_name="Pivot")
    ws, wb = xw.sheets["Pivot"], xw.book
    ws.conditional_format("B2:C4", {"type": "3_color_scale"})
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"categories": "=Pivot!$A$2:$A$4", "values": "=Pivot!$C$2:$C$4"})
    ws.insert_chart("E2", chart)
print(df.groupby("region").revenue.sum().round(2).to_json())
"""))
    got = json.loads(r["stdout"])
    assert got == pytest.approx(sales_totals()), got
    data = s.get("sales_summary.xlsx")
    assert "xl/charts/chart1.xml" in members(data)
    assert "conditionalFormatting" in member(data, "xl/worksheets/sheet1.xml")


@task("odf", "pandas", "xlrd", "tool:soffice")
def spreadsheet_formats_ods_and_legacy_xls(s):
    r = s.run(py("""
import pandas as pd, subprocess
df = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "pop_k": [709, 10092, 7276]})
df.to_excel("cities.ods", engine="odf", index=False)
subprocess.run(["soffice", "--headless", "--convert-to", "xls", "cities.ods"], check=True,
               capture_output=True)
old = pd.read_excel("cities.xls", engine="xlrd")
print(int(old.pop_k.sum()))
"""))
    assert r["stdout"].strip() == "18077", r["stdout"]
    ods = s.get("cities.ods")
    assert member(ods, "mimetype") == "application/vnd.oasis.opendocument.spreadsheet"
    assert s.get("cities.xls").startswith(b"\xd0\xcf\x11\xe0")  # OLE2, Excel 97


# Data, statistics, machine learning

@task("sklearn")
def classify_iris_with_a_random_forest(s):
    r = s.run(py("""
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.metrics import accuracy_score, classification_report
X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
clf = RandomForestClassifier(n_estimators=200, random_state=0).fit(Xtr, ytr)
pred = clf.predict(Xte)
print(classification_report(yte, pred))
print(f"accuracy={accuracy_score(yte, pred):.3f}")
"""))
    acc = float(re.search(r"accuracy=([\d.]+)", r["stdout"]).group(1))
    assert 0.9 <= acc <= 1.0, r["stdout"]


@task("sklearn", "joblib", "pandas")
def churn_model_pipeline_saved_with_joblib(s):
    r = s.run(py("""
import numpy as np, pandas as pd, joblib
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
rng = np.random.default_rng(7)
n = 600
df = pd.DataFrame({"tenure": rng.integers(1, 72, n), "monthly": rng.normal(70, 20, n)})
df["churn"] = ((df.monthly / 10 - df.tenure / 8 + rng.normal(0, 1, n)) > 0).astype(int)
model = make_pipeline(StandardScaler(), LogisticRegression())
scores = cross_val_score(model, df[["tenure", "monthly"]], df.churn, cv=5)
model.fit(df[["tenure", "monthly"]], df.churn)
joblib.dump(model, "churn_model.joblib")
print(f"cv_accuracy={scores.mean():.3f}")
print("reloaded", joblib.load("churn_model.joblib").predict([[2, 120.0], [70, 30.0]]).tolist())
""", "train.py"))
    assert float(re.search(r"cv_accuracy=([\d.]+)", r["stdout"]).group(1)) > 0.8, r["stdout"]
    assert "reloaded [1, 0]" in r["stdout"], r["stdout"]
    assert len(s.get("churn_model.joblib")) > 500


@task("statsmodels", "numpy", "pandas")
def ols_regression_with_statsmodels(s):
    r = s.run(py("""
import numpy as np, pandas as pd
import statsmodels.formula.api as smf
rng = np.random.default_rng(0)
df = pd.DataFrame({"ad_spend": rng.uniform(0, 100, 200)})
df["sales"] = 3.0 + 2.0 * df.ad_spend + rng.normal(0, 5, 200)
fit = smf.ols("sales ~ ad_spend", data=df).fit()
print(fit.summary())
print("coef", round(fit.params["Intercept"], 3), round(fit.params["ad_spend"], 3))
print("r2", round(fit.rsquared, 4))
"""))
    out = r["stdout"]
    assert "OLS Regression Results" in out
    b0, b1 = map(float, re.search(r"^coef (\S+) (\S+)", out, re.M).groups())
    assert abs(b1 - 2.0) < 0.05 and abs(b0 - 3.0) < 2.0, (b0, b1)
    assert float(re.search(r"^r2 (\S+)", out, re.M).group(1)) > 0.95


@task("statsmodels", "pandas")
def forecast_a_monthly_series(s):
    r = s.run(py("""
import numpy as np, pandas as pd
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.seasonal import seasonal_decompose
rng = np.random.default_rng(1)
idx = pd.date_range("2018-01-01", periods=72, freq="MS")
season = 10 * np.sin(2 * np.pi * np.arange(72) / 12)
y = pd.Series(100 + 0.5 * np.arange(72) + season + rng.normal(0, 1, 72), index=idx)
dec = seasonal_decompose(y, model="additive", period=12)
print("amplitude", round(dec.seasonal.max() - dec.seasonal.min(), 1))
fc = ARIMA(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, 12)).fit().forecast(12)
print("next_jan", round(fc.iloc[0], 1), fc.index[0].date())
"""))
    amp = float(re.search(r"amplitude (\S+)", r["stdout"]).group(1))
    assert 17 < amp < 23, r["stdout"]
    m = re.search(r"next_jan (\S+) 2024-01-01", r["stdout"])
    assert m and 130 < float(m.group(1)) < 142, r["stdout"]   # 100 + 0.5*72 + sin(0)


@task("scipy", "numpy")
def hypothesis_test_and_curve_fit(s):
    r = s.run(py("""
import numpy as np
from scipy import stats, optimize
rng = np.random.default_rng(3)
a, b = rng.normal(10, 2, 80), rng.normal(12, 2, 80)
t, p = stats.ttest_ind(a, b)
print(f"p_value={p:.2e}")
x = np.linspace(0, 10, 50)
y = 5 * np.exp(-0.5 * x) + rng.normal(0, 0.05, 50)
(amp, k), _ = optimize.curve_fit(lambda x, a, k: a * np.exp(-k * x), x, y, p0=(1, 1))
print(f"amp={amp:.2f} k={k:.3f}")
"""))
    out = r["stdout"]
    assert float(re.search(r"p_value=(\S+)", out).group(1)) < 1e-6, out
    amp, k = map(float, re.search(r"amp=(\S+) k=(\S+)", out).groups())
    assert abs(amp - 5) < 0.1 and abs(k - 0.5) < 0.02, out


@task("sympy")
def solve_and_integrate_symbolically(s):
    r = s.run(py("""
import sympy as sp
x = sp.symbols("x")
print(sp.solve(x**2 - 5*x + 6, x))
print(sp.integrate(sp.sin(x)**2, (x, 0, sp.pi)))
print(sp.latex(sp.diff(sp.exp(x) * sp.sin(x), x)))
print(sp.series(sp.cos(x), x, 0, 6))
"""))
    lines = r["stdout"].splitlines()
    assert lines[:2] == ["[2, 3]", "pi/2"], lines
    assert lines[2] == r"e^{x} \sin{\left(x \right)} + e^{x} \cos{\left(x \right)}", lines
    assert lines[3] == "1 - x**2/2 + x**4/24 + O(x**6)", lines


@task("xgboost", "sklearn")
def gradient_boosting_with_xgboost(s):
    r = s.run(py("""
from sklearn.datasets import make_regression
from sklearn.model_selection import train_test_split
from sklearn.metrics import r2_score
from xgboost import XGBRegressor
X, y = make_regression(n_samples=1000, n_features=8, noise=10, random_state=0)
Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
m = XGBRegressor(n_estimators=300, max_depth=3, learning_rate=0.1, n_jobs=1).fit(Xtr, ytr)
print(f"r2={r2_score(yte, m.predict(Xte)):.3f}")
"""))
    assert float(re.search(r"r2=(\S+)", r["stdout"]).group(1)) > 0.85, r["stdout"]


@task("sklearn", "matplotlib")
def cluster_customers_and_plot(s):
    r = s.run(py("""
import numpy as np, matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
X, _ = make_blobs(n_samples=300, centers=[(0, 0), (6, 6), (0, 8)], cluster_std=0.8, random_state=0)
km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
print(sorted(np.bincount(km.labels_).tolist()))
plt.figure(figsize=(6, 6))
plt.scatter(X[:, 0], X[:, 1], c=km.labels_, s=8)
plt.scatter(*km.cluster_centers_.T, marker="x", c="red")
plt.savefig("clusters.png", dpi=100)
"""))
    assert r["stdout"].strip() == "[100, 100, 100]", r["stdout"]
    assert png_size(s.get("clusters.png")) == (600, 600)


@task("networkx")
def shortest_delivery_route(s):
    r = s.run(py("""
import networkx as nx
G = nx.Graph()
G.add_weighted_edges_from([("Depot", "A", 4), ("Depot", "B", 2), ("B", "A", 1), ("A", "C", 5),
                           ("B", "D", 8), ("C", "D", 3), ("D", "Shop", 2), ("C", "Shop", 6)])
path = nx.dijkstra_path(G, "Depot", "Shop")
print(" -> ".join(path), nx.dijkstra_path_length(G, "Depot", "Shop"))
print("mst", sum(d["weight"] for *_, d in nx.minimum_spanning_tree(G).edges(data=True)))
"""))
    assert r["stdout"].splitlines() == ["Depot -> B -> D -> Shop 12", "mst 13"], r["stdout"]


@task("numba", "numpy")
def speed_up_a_loop_with_numba(s):
    r = s.run(py("""
import numpy as np
from numba import njit

@njit(cache=False)
def prime_sum(n):
    sieve = np.ones(n, dtype=np.bool_)
    sieve[:2] = False
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = False
    total = 0
    for i in range(n):
        if sieve[i]:
            total += i
    return total

print(prime_sum(1_000_000))
"""))
    assert r["stdout"].strip() == "37550402023", r["stdout"]


@task("pandas")
def resample_and_roll_a_time_series(s):
    s.attach("sales.csv", SALES_CSV)
    r = s.run(py("""
import pandas as pd
df = pd.read_csv("sales.csv", parse_dates=["date"]).assign(revenue=lambda d: d.units * d.price)
monthly = df.set_index("date").revenue.resample("M").sum()
print("best_month", monthly.idxmax().strftime("%Y-%m"), round(monthly.max(), 2))
print("rolling3_last", round(monthly.rolling(3).mean().iloc[-1], 2))
top = df.groupby(["region", "product"]).units.sum().sort_values(ascending=False).head(1)
print("top", *top.index[0], int(top.iloc[0]))
"""))
    rows = [ln.split(",") for ln in SALES_CSV.decode().splitlines()[1:]]
    month = {}
    for d, _, _, u, p in rows:
        month[d[:7]] = month.get(d[:7], 0) + int(u) * float(p)
    best = max(month, key=month.get)
    assert f"best_month {best} {round(month[best], 2)}" in r["stdout"], r["stdout"]
    last3 = [month[k] for k in sorted(month)[-3:]]
    assert f"rolling3_last {round(sum(last3) / 3, 2)}" in r["stdout"], r["stdout"]


@task("tool:sqlite3", "pandas")
def sql_over_a_sqlite_database(s):
    r = s.run(py("""
import sqlite3, pandas as pd
con = sqlite3.connect("shop.db")
con.executescript('''
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, country TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INT, amount REAL);
INSERT INTO customers VALUES (1,'Ana','PT'),(2,'Bo','SE'),(3,'Cy','PT');
INSERT INTO orders(customer_id, amount) VALUES (1,10.5),(1,20),(2,7.25),(3,30),(3,1.25);
''')
con.commit()
print(pd.read_sql("SELECT country, SUM(amount) AS total FROM orders JOIN customers c "
                  "ON c.id = customer_id GROUP BY country ORDER BY total DESC", con).to_string(index=False))
""") + "sqlite3 shop.db 'SELECT COUNT(*), MAX(amount) FROM orders;'\n")
    out = r["stdout"].split()
    assert out[-1] == "5|30.0" and out[:6] == ["country", "total", "PT", "61.75", "SE", "7.25"], out
    kind(s.get("shop.db"), "sqlite")


@task("pulp")
def plan_production_with_linear_programming(s):
    r = s.run(py("""
import pulp
prob = pulp.LpProblem("production", pulp.LpMaximize)
chairs = pulp.LpVariable("chairs", lowBound=0, cat="Integer")
tables = pulp.LpVariable("tables", lowBound=0, cat="Integer")
prob += 45 * chairs + 80 * tables
prob += 5 * chairs + 20 * tables <= 400   # wood
prob += 10 * chairs + 15 * tables <= 450  # labour
prob.solve(pulp.PULP_CBC_CMD(msg=False))
print(pulp.LpStatus[prob.status], int(chairs.value()), int(tables.value()), pulp.value(prob.objective))
"""))
    assert r["stdout"].split() == ["Optimal", "24", "14", "2200.0"], r["stdout"]


# Charts, maps and non-Latin text

@task("matplotlib", "numpy")
def line_chart_saved_as_png(s):
    s.run(py("""
import numpy as np, matplotlib.pyplot as plt
x = np.linspace(0, 2 * np.pi, 200)
fig, ax = plt.subplots(figsize=(8, 5))
ax.plot(x, np.sin(x), label="sin")
ax.plot(x, np.cos(x), label="cos")
ax.legend(); ax.set_title("Waves"); ax.grid(True)
fig.savefig("waves.png", dpi=100)
"""))
    png = s.get("waves.png")
    assert png_size(png) == (800, 500)
    assert len(set(image(png).convert("RGB").getdata())) > 50   # a drawing, not a blank


@task("matplotlib")
def bare_plt_show_still_gives_a_file(s):
    r = s.run(py("""
import matplotlib.pyplot as plt
plt.bar(["a", "b", "c"], [3, 7, 2])
plt.title("Counts")
plt.show()
"""))
    pngs = [n for n in s.files if n.endswith(".png")]
    assert len(pngs) == 1, (s.files, r)
    kind(s.get(pngs[0]), "png")


def cjk_or_fallback(fonts):
    return re.search(r"NotoSansCJK|NotoSansMonoCJK|DroidSansFallback", fonts)


@task("matplotlib", "tool:pdffonts")
def chart_titled_in_japanese(s):
    r = s.run(py("""
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4))
ax.bar(["東京", "大阪", "名古屋"], [1396, 880, 232])
ax.set_title("都市別人口（万人）")
ax.set_ylabel("人口")
fig.savefig("population.png", dpi=100)
fig.savefig("population.pdf")
"""))
    no_missing_glyphs(r)
    fonts = pdf_fonts(s.get("population.pdf"))
    assert cjk_or_fallback(fonts), fonts
    png_size(s.get("population.png"))


@task("matplotlib", "arabic_reshaper", "bidi", "tool:pdffonts")
def chart_labelled_in_arabic_hindi_chinese_and_emoji(s):
    r = s.run(py("""
import matplotlib.pyplot as plt
import arabic_reshaper
from bidi.algorithm import get_display
ar = get_display(arabic_reshaper.reshape("المبيعات الشهرية"))
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [3, 1, 2])
ax.set_title(ar)
ax.set_xlabel("महीना")
ax.set_ylabel("销售额")
fig.suptitle("Q3 🚀 ✅")
fig.savefig("multi.pdf")
fig.savefig("multi.png")
"""))
    no_missing_glyphs(r)
    fonts = pdf_fonts(s.get("multi.pdf"))
    assert "Devanagari" in fonts and "Symbola" in fonts and cjk_or_fallback(fonts), fonts
    png_size(s.get("multi.png"))


@task("seaborn", "pandas")
def correlation_heatmap_with_seaborn(s):
    s.attach("sales.csv", SALES_CSV)
    s.run(py("""
import pandas as pd, seaborn as sns, matplotlib.pyplot as plt
df = pd.read_csv("sales.csv")
df["revenue"] = df.units * df.price
plt.figure(figsize=(5, 4))
sns.heatmap(df[["units", "price", "revenue"]].corr(), annot=True, cmap="coolwarm", vmin=-1, vmax=1)
plt.tight_layout()
plt.savefig("heatmap.png", dpi=120)
"""))
    assert png_size(s.get("heatmap.png")) == (600, 480)


@task("plotly", "pandas")
def interactive_plotly_chart_as_html(s):
    s.run(py("""
import pandas as pd, plotly.express as px
df = pd.DataFrame({"year": [2020, 2021, 2022, 2023], "users": [1.2, 2.9, 4.4, 7.1]})
fig = px.line(df, x="year", y="users", markers=True, title="Active users (M)")
fig.write_html("users.html", include_plotlyjs=True)
"""))
    html = s.get("users.html").decode()
    assert len(html) > 1_000_000 and "Active users (M)" in html   # plotly.js inline: works offline


@task("wordcloud", "numpy")
def word_cloud_from_text(s):
    r = s.run(py("""
from wordcloud import WordCloud
text = ("data " * 30) + ("python " * 20) + ("chart " * 10) + "sandbox model file " * 3
wc = WordCloud(width=800, height=400, background_color="white", collocations=False,
               random_state=1).generate(text)
wc.to_file("cloud.png")
print(max(wc.words_, key=wc.words_.get))
"""))
    assert r["stdout"].strip() == "data"
    assert png_size(s.get("cloud.png")) == (800, 400)


@task("matplotlib_venn")
def venn_diagram(s):
    s.run(py("""
import matplotlib.pyplot as plt
from matplotlib_venn import venn3
venn3(subsets=({"a", "b", "c"}, {"b", "c", "d"}, {"c", "e"}), set_labels=("Web", "App", "Store"))
plt.savefig("venn.png", dpi=80)
"""))
    png_size(s.get("venn.png"))


@task("folium", "altair", "pandas")
def map_and_declarative_chart(s):
    s.run(py("""
import folium, altair as alt, pandas as pd
m = folium.Map(location=[48.8566, 2.3522], zoom_start=12)
folium.Marker([48.8584, 2.2945], popup="Tour Eiffel").add_to(m)
m.save("paris_map.html")
df = pd.DataFrame({"fruit": ["apple", "pear", "plum"], "kg": [12, 7, 3]})
alt.Chart(df).mark_bar().encode(x="fruit", y="kg").save("fruit_chart.json")
"""))
    html = s.get("paris_map.html").decode()
    assert "leaflet" in html and "Tour Eiffel" in html
    spec = json.loads(s.get("fruit_chart.json"))
    mark = spec["mark"]
    assert (mark if isinstance(mark, str) else mark["type"]) == "bar" and "vega-lite" in spec["$schema"], spec


@task("geopandas", "shapely")
def areas_and_geojson_with_geopandas(s):
    r = s.run(py("""
import geopandas as gpd
from shapely.geometry import Polygon, Point
parcels = gpd.GeoDataFrame({"name": ["lot1", "lot2"]},
    geometry=[Polygon([(0, 0), (40, 0), (40, 25), (0, 25)]), Polygon([(50, 0), (80, 0), (65, 30)])],
    crs="EPSG:3857")
parcels["area"] = parcels.area
print(parcels[["name", "area"]].to_string(index=False))
wells = gpd.GeoDataFrame(geometry=[Point(10, 10), Point(65, 10), Point(100, 100)], crs="EPSG:3857")
print("wells_in_lots", len(gpd.sjoin(wells, parcels, predicate="within")))
parcels.to_crs("EPSG:4326").to_file("parcels.geojson", driver="GeoJSON")
"""))
    out = r["stdout"]
    assert re.search(r"lot1\s+1000\.0", out) and re.search(r"lot2\s+450\.0", out), out
    assert "wells_in_lots 2" in out, out
    gj = json.loads(s.get("parcels.geojson"))
    assert [f["properties"]["name"] for f in gj["features"]] == ["lot1", "lot2"]


@task("graphviz", "tool:dot")
def flowchart_with_graphviz(s):
    s.run(py("""
import graphviz
g = graphviz.Digraph("flow", format="png")
for a, b in [("Start", "Validate"), ("Validate", "Process"), ("Validate", "Reject"), ("Process", "End")]:
    g.edge(a, b)
g.render("flow", cleanup=True)
"""))
    w, h = png_size(s.get("flow.png"))
    assert w > 100 and h > 200


# Images, vision, sound and video

@task("cv2", "numpy")
def edges_and_contours_with_opencv(s):
    r = s.run(py("""
import cv2, numpy as np
img = np.zeros((300, 400, 3), np.uint8)
cv2.rectangle(img, (50, 50), (200, 150), (255, 255, 255), -1)
cv2.circle(img, (300, 200), 60, (0, 255, 0), -1)
gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
edges = cv2.Canny(gray, 50, 150)
contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
cv2.imwrite("edges.png", edges)
print(len(contours), int(cv2.contourArea(max(contours, key=cv2.contourArea))))
"""))
    n, area = map(int, r["stdout"].split())
    assert n == 2 and 10000 < area < 16000, r["stdout"]
    png = image(s.get("edges.png"))
    assert png.size == (400, 300) and png.getextrema() == (0, 255)


@task("PIL")
def thumbnail_of_an_attached_photo(s):
    from PIL import Image
    buf = io.BytesIO()
    Image.radial_gradient("L").resize((1600, 1200)).convert("RGB").save(buf, "PNG")
    s.attach("holiday photo.png", buf.getvalue())
    r = s.run(py("""
from PIL import Image, ImageOps, ImageDraw
im = Image.open("holiday photo.png")
print(im.size)
im.thumbnail((400, 400))
im = ImageOps.grayscale(im)
ImageDraw.Draw(im).text((10, 10), "(c) 2024", fill=255)
im.save("holiday_thumb.jpg", quality=85)
"""))
    assert r["stdout"].strip() == "(1600, 1200)"
    thumb = image(kind(s.get("holiday_thumb.jpg"), "jpeg"))
    assert thumb.size == (400, 300) and thumb.mode == "L"


@task("qrcode", "pyzbar", "PIL")
def qr_code_made_and_read_back(s):
    r = s.run(py("""
import qrcode
from PIL import Image
from pyzbar.pyzbar import decode
qrcode.make("https://example.org/ticket/8841").save("ticket_qr.png")
print(decode(Image.open("ticket_qr.png"))[0].data.decode())
"""))
    assert r["stdout"].strip() == "https://example.org/ticket/8841"
    kind(s.get("ticket_qr.png"), "png")


@task("tool:tesseract", "PIL")
def ocr_text_from_an_image(s):
    r = s.run(py("""
from PIL import Image, ImageDraw, ImageFont
font = ImageFont.truetype("DejaVuSans.ttf", 48)
img = Image.new("L", (900, 200), 255)
ImageDraw.Draw(img).text((30, 60), "INVOICE 4711 PAID", font=font, fill=0)
img.save("scan.png")
""") + "tesseract scan.png stdout 2>/dev/null\n")
    assert "INVOICE 4711 PAID" in r["stdout"], r["stdout"]


@task("skimage", "numpy")
def segment_an_image_with_scikit_image(s):
    r = s.run(py("""
import numpy as np
from skimage import filters, measure, io, util
img = np.zeros((200, 200))
img[20:60, 20:60] = 1.0
img[100:180, 120:170] = 0.8
img = img + np.random.default_rng(0).normal(0, 0.05, img.shape)
mask = img > filters.threshold_otsu(img)
labels = measure.label(mask)
print(labels.max(), sorted(int(r.area) for r in measure.regionprops(labels) if r.area > 50))
io.imsave("mask.png", util.img_as_ubyte(mask))
"""))
    assert r["stdout"].strip().endswith("[1600, 4000]"), r["stdout"]
    assert png_size(s.get("mask.png")) == (200, 200)


@task("tool:convert", "cairosvg", "tool:rsvg-convert")
def svg_and_images_into_one_pdf(s):
    s.run("""cat > logo.svg << 'EOF'
<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">
  <rect width="200" height="100" fill="#336"/><circle cx="50" cy="50" r="30" fill="#fc0"/>
</svg>
EOF
python3 -c 'import cairosvg; cairosvg.svg2png(url="logo.svg", write_to="logo.png", output_width=400)'
rsvg-convert -w 200 logo.svg -o logo_small.png
convert logo.png logo_small.png -density 72 album.pdf
convert -density 50 album.pdf[0] first_page.jpg
""")
    assert png_size(s.get("logo.png")) == (400, 200)
    assert png_size(s.get("logo_small.png")) == (200, 100)
    assert pdf_pages(s.get("album.pdf")) == 2
    kind(s.get("first_page.jpg"), "jpeg")


@task("tool:ffmpeg", "matplotlib")
def animation_as_gif_and_mp4(s):
    r = s.run(py("""
import numpy as np, matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation, PillowWriter, FFMpegWriter
fig, ax = plt.subplots(figsize=(4, 3))
x = np.linspace(0, 2 * np.pi, 100)
line, = ax.plot(x, np.sin(x))
anim = FuncAnimation(fig, lambda i: line.set_ydata(np.sin(x + i / 5)), frames=20)
anim.save("wave.gif", writer=PillowWriter(fps=10))
anim.save("wave.mp4", writer=FFMpegWriter(fps=10))
""") + "ffprobe -v error -show_entries format=duration -of csv=p=0 wave.mp4\n")
    assert abs(float(r["stdout"].split()[-1]) - 2.0) < 0.15, r["stdout"]
    kind(s.get("wave.gif"), "gif")
    assert s.get("wave.mp4")[4:8] == b"ftyp"


@task("soundfile", "pydub", "numpy", "tool:ffmpeg")
def tone_to_wav_and_mp3(s):
    r = s.run(py("""
import numpy as np, soundfile as sf
from pydub import AudioSegment
sr = 22050
t = np.arange(int(sr * 1.5)) / sr
sf.write("tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), sr)
seg = AudioSegment.from_wav("tone.wav")
seg.export("tone.mp3", format="mp3", bitrate="64k")
print(len(seg), round(float(np.abs(np.fft.rfft(sf.read("tone.wav")[0])).argmax() * sr / len(t))))
"""))
    assert r["stdout"].split() == ["1500", "440"], r["stdout"]
    assert s.get("tone.wav")[:4] == b"RIFF"
    mp3 = s.get("tone.mp3")
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF, mp3[:8]


# Text, web formats, archives

@task("bs4", "lxml", "pandas")
def scrape_a_table_out_of_html(s):
    r = s.run(py("""
from bs4 import BeautifulSoup
import pandas as pd, io
html = '''<html><body><div class="prices"><table id="t">
<tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.20</td></tr>
<tr><td>Cake</td><td>4.80</td></tr><tr><td>Soup</td><td>6.00</td></tr></table>
<a href="/next">next</a><a href="/prev">prev</a></div></body></html>'''
soup = BeautifulSoup(html, "lxml")
print([a["href"] for a in soup.select("div.prices a")])
df = pd.read_html(io.StringIO(str(soup.find("table", id="t"))))[0]
print(round(df.Price.sum(), 2), df.Item.iloc[-1])
"""))
    assert r["stdout"].splitlines() == ["['/next', '/prev']", "14.0 Soup"], r["stdout"]


@task("yaml", "toml")
def convert_yaml_config_to_json_and_toml(s):
    s.run(py("""
import yaml, json, toml
cfg = yaml.safe_load('''
service: billing
replicas: 3
ports: [8080, 9090]
db: {host: db.internal, pool: 10}
''')
cfg["replicas"] *= 2
json.dump(cfg, open("config.json", "w"), indent=2)
open("config.toml", "w").write(toml.dumps(cfg))
yaml.safe_dump(cfg, open("config.yaml", "w"), sort_keys=False)
"""))
    import yaml
    want = {"service": "billing", "replicas": 6, "ports": [8080, 9090],
            "db": {"host": "db.internal", "pool": 10}}
    assert json.loads(s.get("config.json")) == want
    assert yaml.safe_load(s.get("config.yaml")) == want
    toml_text = s.get("config.toml").decode()
    assert "replicas = 6" in toml_text and "[db]" in toml_text, toml_text


@task("lxml", "xmltodict")
def query_xml_with_xpath(s):
    r = s.run(py("""
from lxml import etree
import xmltodict
xml = b'''<catalog><book id="b1"><title>Dune</title><price>9.99</price></book>
<book id="b2"><title>Emma</title><price>4.50</price></book>
<book id="b3"><title>Ulysses</title><price>12.00</price></book></catalog>'''
root = etree.fromstring(xml)
print(round(sum(float(p) for p in root.xpath("//book/price/text()")), 2))
print(root.xpath("string(//book[price > 10]/title)"))
print(xmltodict.parse(xml)["catalog"]["book"][1]["@id"])
"""))
    assert r["stdout"].splitlines() == ["26.49", "Ulysses", "b2"], r["stdout"]


@task("tabulate")
def plain_text_report_with_tabulate(s):
    r = s.run(py("""
from tabulate import tabulate
rows = [("Alice", 34, 88.5), ("Bob", 28, 92.25)]
print(tabulate(rows, headers=["Name", "Age", "Score"], tablefmt="github", floatfmt=".1f"))
"""))
    assert r["stdout"].splitlines() == [
        "| Name   |   Age |   Score |", "|--------|-------|---------|",
        "| Alice  |    34 |    88.5 |", "| Bob    |    28 |    92.2 |"], r["stdout"]


@task("chardet")
def fix_the_encoding_of_an_attached_file(s):
    s.attach("legacy.csv", "nom;ville\nFrançois;Orléans\nZoë;Besançon\nJérôme;Nîmes\n"
             "Agnès;Sète\n".encode("cp1252") * 5)
    r = s.run(py("""
import chardet
raw = open("legacy.csv", "rb").read()
enc = chardet.detect(raw)["encoding"]
print(enc)
open("legacy_utf8.csv", "w", encoding="utf-8").write(raw.decode(enc))
"""))
    assert r["stdout"].strip().lower() in ("iso-8859-1", "windows-1252"), r["stdout"]
    assert "François;Orléans" in s.get("legacy_utf8.csv").decode("utf-8")


@task("tool:zip")
def bundle_results_into_a_zip(s):
    r = s.run("""mkdir -p results/plots
for i in 1 2 3; do seq 1 $((i * 100)) > results/run_$i.txt; done
printf 'x,y\\n1,2\\n' > results/plots/data.csv
zip -qr results.zip results && unzip -l results.zip | tail -1
python3 -c "import zipfile; print(sorted(zipfile.ZipFile('results.zip').namelist()))"
""")
    names = [n for n in members(s.get("results.zip")) if not n.endswith("/")]
    assert sorted(names) == ["results/plots/data.csv", "results/run_1.txt", "results/run_2.txt",
                             "results/run_3.txt"], names
    assert "6 files" in r["stdout"], r["stdout"]   # with its two directories


@task("tool:jq")
def shell_pipeline_with_awk_and_jq(s):
    s.attach("sales.csv", SALES_CSV)
    r = s.run("""awk -F, 'NR > 1 { rev[$2] += $4 * $5 } END { for (r in rev) printf "%s %.2f\\n", r, rev[r] }' sales.csv | sort
echo '{"orders":[{"id":1,"qty":3},{"id":2,"qty":5},{"id":3,"qty":9}]}' > orders.json
jq '[.orders[] | select(.qty > 4) | .qty] | add' orders.json
wc -l < sales.csv
""")
    want = [f"{k} {v:.2f}" for k, v in sorted(sales_totals().items())]
    assert r["stdout"].splitlines() == want + ["14", "145"], r["stdout"]


# Node, C and R

@task("node:exceljs")
def excel_workbook_from_node(s):
    s.run("""
const ExcelJS = require("exceljs");
const wb = new ExcelJS.Workbook();
const ws = wb.addWorksheet("Orders");
ws.columns = [{ header: "Id", key: "id" }, { header: "Amount", key: "amount" }];
[[1, 250], [2, 125.5], [3, 74.5]].forEach(([id, amount]) => ws.addRow({ id, amount }));
ws.getCell("B5").value = { formula: "SUM(B2:B4)", result: 450 };
ws.getRow(1).font = { bold: true };
wb.xlsx.writeFile("orders.xlsx").then(() => console.log("ok"));
""", lang="js")
    data = s.get("orders.xlsx")
    assert "<f>SUM(B2:B4)</f>" in member(data, "xl/worksheets/sheet1.xml")


@task("node:docx")
def word_document_from_node(s):
    s.run("""cat > make_doc.js << 'EOF'
const fs = require("fs");
const { Document, Packer, Paragraph, HeadingLevel, TextRun } = require("docx");
const doc = new Document({ sections: [{ children: [
  new Paragraph({ text: "Onboarding checklist", heading: HeadingLevel.HEADING_1 }),
  new Paragraph({ children: [new TextRun({ text: "Laptop issued", bold: true })] }),
] }] });
Packer.toBuffer(doc).then(buf => fs.writeFileSync("onboarding.docx", buf));
EOF
node make_doc.js
""")
    xml = member(s.get("onboarding.docx"), "word/document.xml")
    assert "Onboarding checklist" in xml and "Laptop issued" in xml


@task("node:pdf-lib")
def pdf_from_node_with_pdf_lib(s):
    s.run("""
const fs = require("fs");
const { PDFDocument, StandardFonts } = require("pdf-lib");
(async () => {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const t of ["Certificate", "of completion"]) pdf.addPage([595, 842]).drawText(t, { x: 50, y: 780, size: 24, font });
  fs.writeFileSync("certificate.pdf", await pdf.save());
})();
""", lang="js")
    pdf = s.get("certificate.pdf")
    assert pdf_pages(pdf) == 2 and "of completion" in pdf_text(pdf)


@task("node:papaparse", "node:lodash")
def csv_statistics_in_node(s):
    s.attach("sales.csv", SALES_CSV)
    r = s.run("""
const fs = require("fs");
const Papa = require("papaparse");
const _ = require("lodash");
const rows = Papa.parse(fs.readFileSync("sales.csv", "utf8"), { header: true, dynamicTyping: true, skipEmptyLines: true }).data;
const byRegion = _.mapValues(_.groupBy(rows, "region"), rs => _.round(_.sumBy(rs, r => r.units * r.price), 2));
console.log(JSON.stringify(byRegion));
""", lang="js")
    assert json.loads(r["stdout"]) == pytest.approx(sales_totals()), r["stdout"]


@task()
def statistics_in_c(s):
    r = s.run("""
#include <math.h>
#include <stdio.h>
int main(void) {
    double x[] = {2, 4, 4, 4, 5, 5, 7, 9}, sum = 0, sq = 0;
    int n = sizeof x / sizeof *x;
    for (int i = 0; i < n; i++) sum += x[i];
    for (int i = 0; i < n; i++) sq += (x[i] - sum / n) * (x[i] - sum / n);
    printf("mean=%.2f sd=%.2f\\n", sum / n, sqrt(sq / n));
    return 0;
}
""", lang="c")
    assert r["stdout"] == "mean=5.00 sd=2.00\n", r


@task()
def linear_model_in_r(s):
    r = s.run("""
df <- data.frame(x = 1:20)
set.seed(1)
df$y <- 4 + 1.5 * df$x + rnorm(20, sd = 0.5)
fit <- lm(y ~ x, data = df)
cat(sprintf("slope=%.2f r2=%.3f\\n", coef(fit)[2], summary(fit)$r.squared))
png("fit.png", width = 500, height = 400); plot(df); abline(fit); invisible(dev.off())
""", lang="r")
    m = re.search(r"slope=(\S+) r2=(\S+)", r["stdout"])
    assert m and abs(float(m.group(1)) - 1.5) < 0.05 and float(m.group(2)) > 0.99, r["stdout"]
    assert png_size(s.get("fit.png")) == (500, 400)


# Running the tasks

@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """LibreOffice, TeX and model fits take more than the default 4 s."""
    d = Daemon(tmp_path_factory.mktemp("tasks"), CI_MAX_RUN_TIMEOUT_SECONDS="120",
               CI_MAX_MEMORY_MB="2048", CI_WORKSPACE_MB="512").start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()
        write_report()


def write_report():
    with open(REPORT, "w", encoding="utf-8") as f:
        f.write("task\tresult\tseconds\tuses\n")
        for name, (result, secs) in RESULTS.items():
            f.write(f"{name}\t{result}\t{secs:.2f}\t{' '.join(TASKS[name][1])}\n")
        proven = sorted({u for n, (res, _) in RESULTS.items() if res == "pass" for u in TASKS[n][1]})
        f.write(f"# proven present: {' '.join(proven)}\n")


@pytest.mark.parametrize("name", list(TASKS))
def test_task(daemon, name):
    fn, _ = TASKS[name]
    start = time.monotonic()
    RESULTS[name] = ("fail", 0.0)
    try:
        fn(Session(daemon))
    finally:
        secs = time.monotonic() - start
        RESULTS[name] = (RESULTS[name][0], secs)
    RESULTS[name] = ("pass", secs)


def test_there_are_enough_tasks():
    assert len(TASKS) >= 40, len(TASKS)


def test_readme_lists_what_the_tasks_use():
    """What the tasks prove present is in inventory.py, hence in README's table."""
    listed = {m for _, mods in inventory.PYTHON for m, _ in mods}
    listed |= {f"tool:{c}" for c, *_ in inventory.TOOLS} | {"tool:pdffonts", "tool:pdfinfo"}
    with open(os.path.join(os.path.dirname(inventory.HINTS), "..", "node", "package.json")) as f:
        listed |= {f"node:{n}" for n in json.load(f)["dependencies"]}
    used = {u for _, uses in TASKS.values() for u in uses}
    assert used - listed == set(), f"used by tasks but not in inventory.py: {sorted(used - listed)}"
