/**
 * Tiny WAV (RIFF, 16-bit PCM) writer and reader for the voice tests, and the signals they are made of:
 * tone bursts (the "speech" the fake Deepgram hears) and silence.
 *
 *   const wav = writeWav({ sampleRate: 16000, samples: concatSamples(tone(16000, 500), silence(16000, 800)) });
 *   const { sampleRate, channels, samples } = readWav(wav);
 */

export interface Pcm {
  sampleRate: number;
  /** Default 1. */
  channels?: number;
  /** Interleaved signed 16-bit samples. */
  samples: Int16Array;
}

/** A canonical 44-byte-header WAV file of the samples. */
export function writeWav(pcm: Pcm): Buffer {
  const channels = pcm.channels ?? 1;
  const dataBytes = pcm.samples.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(channels, 22);
  out.writeUInt32LE(pcm.sampleRate, 24);
  out.writeUInt32LE(pcm.sampleRate * channels * 2, 28);
  out.writeUInt16LE(channels * 2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < pcm.samples.length; i += 1) out.writeInt16LE(pcm.samples[i]!, 44 + i * 2);
  return out;
}

/** Reads a 16-bit PCM WAV, skipping chunks other than `fmt ` and `data`; throws on anything else. */
export function readWav(file: Uint8Array): Required<Pcm> {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let format: { channels: number; sampleRate: number } | undefined;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      const audioFormat = buf.readUInt16LE(body);
      const bits = buf.readUInt16LE(body + 14);
      if (audioFormat !== 1 || bits !== 16) throw new Error(`unsupported WAV format ${audioFormat}/${bits} bits`);
      format = { channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4) };
    } else if (id === 'data') {
      if (!format) throw new Error('WAV data before fmt');
      const count = Math.floor(Math.min(size, buf.length - body) / 2);
      const samples = new Int16Array(count);
      for (let i = 0; i < count; i += 1) samples[i] = buf.readInt16LE(body + i * 2);
      return { ...format, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error('WAV without data');
}

/** A sine tone: loud enough for the fake's energy detector (amplitude 8000 of 32767). */
export function tone(sampleRate: number, ms: number, frequency = 440, amplitude = 8000): Int16Array {
  const out = new Int16Array(Math.round((sampleRate * ms) / 1000));
  for (let i = 0; i < out.length; i += 1) {
    out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / sampleRate));
  }
  return out;
}

export function silence(sampleRate: number, ms: number): Int16Array {
  return new Int16Array(Math.round((sampleRate * ms) / 1000));
}

export function concatSamples(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
