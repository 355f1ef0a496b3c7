import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DocumentError } from '#billing/ingest/document-error.ts';
import { documentKind } from '#billing/ingest/document-kind.ts';
import { extractText } from '#billing/ingest/extract-text.ts';
import { minimalPdf } from '../support/fixtures/minimal-pdf.ts';

async function documentError(run: () => unknown): Promise<DocumentError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof DocumentError) return error;
    throw error;
  }
  throw new Error('expected a DocumentError');
}

test('the kind comes from file_type (MIME or extension), else from the file name', async () => {
  assert.is(documentKind('application/pdf', 'x'), 'pdf');
  assert.is(documentKind('.PDF', 'x'), 'pdf');
  assert.is(documentKind('text/plain; charset=utf-8', 'x'), 'text');
  assert.is(documentKind('text/markdown', 'x'), 'markdown');
  assert.is(documentKind('application/octet-stream', 'notes.md'), 'markdown');
  assert.is(documentKind('', 'page.HTM'), 'html');
  const error = await documentError(() =>
    documentKind('application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'cv.docx'),
  );
  assert.is(error.code, 'unsupported_type');
  assert.match(error.message, /cv\.docx/);
});

test('text is UTF-8 without its BOM, or Windows-1252 when not valid UTF-8; line ends become \\n', async () => {
  const utf8 = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from('Café\r\nnaïve\rend', 'utf8')]);
  assert.equal(await extractText(utf8, 'text'), [{ text: 'Café\nnaïve\nend' }]);
  const latin = new Uint8Array(Buffer.from('Caf\xe9 \x93quoted\x94', 'latin1'));
  assert.equal(await extractText(latin, 'text'), [{ text: 'Café “quoted”' }]);
  const binary = await documentError(() => extractText(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00]), 'text'));
  assert.is(binary.code, 'file_unreadable');
});

test('markdown is kept as written', async () => {
  const markdown = '# Title\n\nSome *emphasis* and a [link](https://example.com).\n';
  assert.equal(await extractText(Buffer.from(markdown), 'markdown'), [{ text: markdown }]);
});

test('HTML becomes its visible text: no scripts, styles or images; links as their text; headings as written', async () => {
  const html = `<!doctype html><html><head><title>T</title><style>p { color: red }</style><script>var secret = 1;</script></head>
    <body><h1>Bernoulli numbers</h1><p>They are <b>rational</b>, see <a href="https://example.com/b">the table</a>.</p>
    <img src="x.png" alt="x"><ul><li>B0 = 1</li><li>B1 = -1/2</li></ul><noscript>enable js</noscript></body></html>`;
  const [section] = await extractText(Buffer.from(html), 'html');
  assert.ok(section);
  assert.match(section.text, /^Bernoulli numbers\n/);
  assert.match(section.text, /They are rational, see the table\./);
  assert.match(section.text, /B0 = 1\n.*B1 = -1\/2/);
  assert.not.match(section.text, /secret|color|example\.com|enable js|x\.png/);
});

test('a PDF gives one section per page, numbered from 1', async () => {
  const pdf = minimalPdf([
    ['Page one talks about the Bernoulli numbers.', 'A second line (with parentheses).'],
    ['Page two is about tides.'],
  ]);
  const sections = await extractText(pdf, 'pdf');
  assert.is(sections.length, 2);
  assert.equal(sections.map((s) => s.page), [1, 2]);
  assert.match(sections[0]!.text, /Page one talks about the Bernoulli numbers\.\s+A second line \(with parentheses\)\./);
  assert.match(sections[1]!.text, /Page two is about tides\./);
});

test('a corrupt PDF is an invalid_pdf DocumentError', async () => {
  const error = await documentError(() => extractText(Buffer.from('%PDF-1.4\nthis is not really a pdf\n%%EOF'), 'pdf'));
  assert.is(error.code, 'invalid_pdf');
  const truncated = minimalPdf([['Some text']]).subarray(0, 60);
  assert.is((await documentError(() => extractText(truncated, 'pdf'))).code, 'invalid_pdf');
});

test.run();
