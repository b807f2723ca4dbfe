import { analyzeText } from '../messages/encoding.js';
import { normaliseDestination } from '../messages/phone.js';
import type { SubmitInput } from '../messages/types.js';

/**
 * Realistic, varied send requests: mobile numbers of several countries (E.164, and some national
 * numbers with `country`), OTP / transactional / marketing texts in GSM-7 and UCS-2, one- and
 * multi-part, on all three lanes, some with client_ref, validity or a callback URL. Deterministic for a
 * seed, so every run sends the same mix.
 */

/** mulberry32: a tiny seeded PRNG; benchmark data needs reproducibility, not quality. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;

const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
const digits = (r: Rand, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 10);
  return s;
};
const between = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

interface NumberShape {
  to: string;
  country?: string;
}

// Mobile ranges per country; every generated number is still checked with the server's own rules.
const NUMBER_SHAPES: ReadonlyArray<(r: Rand) => NumberShape> = [
  (r) => ({ to: `+336${digits(r, 8)}` }),
  (r) => ({ to: `+337${between(r, 5, 8)}${digits(r, 7)}` }),
  (r) => ({ to: `06 ${digits(r, 2)} ${digits(r, 2)} ${digits(r, 2)} ${digits(r, 2)}`, country: 'FR' }),
  (r) => ({ to: `+49${pick(r, ['151', '152', '160', '170', '171', '172', '175', '176'])}${digits(r, 8)}` }),
  (r) => ({ to: `+447${between(r, 4, 9)}${digits(r, 8)}` }),
  (r) => ({ to: `07${between(r, 4, 9)}${digits(r, 2)} ${digits(r, 6)}`, country: 'gb' }),
  (r) => ({
    to: `+1${pick(r, ['212', '312', '415', '617', '646', '702'])}${between(r, 2, 9)}${digits(r, 6)}`,
  }),
  (r) => ({ to: `+346${digits(r, 8)}` }),
  (r) => ({ to: `+393${between(r, 2, 9)}${digits(r, 8)}` }),
  (r) => ({ to: `+316${between(r, 1, 5)}${digits(r, 7)}` }),
  (r) => ({ to: `+91${between(r, 7, 9)}${digits(r, 9)}` }),
  (r) => ({ to: `+55119${between(r, 6, 9)}${digits(r, 7)}` }),
];

const BRANDS = ['Pizzeria', 'MyBank', 'ShopCo', 'Relais', 'CityCab', 'DocApp', 'Parcel24'];
const NUMERIC_SENDERS = ['36111', '+4915112345678', '447700900123'];
const NAMES = ['Alice', 'Bruno', 'Chloé', 'Dmitri', 'Emma', 'Farid', 'Grete', 'Hiro', 'Inès', 'Jonas'];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

interface TextShape {
  lane: 'otp' | 'transactional' | 'bulk';
  text: (r: Rand, brand: string) => string;
}

const TEXTS: ReadonlyArray<[weight: number, shape: TextShape]> = [
  // GSM-7, one part
  [18, { lane: 'otp', text: (r, b) => `Your ${b} code is ${digits(r, 6)}. It expires in 10 minutes.` }],
  [8, { lane: 'otp', text: (r) => `${digits(r, 6)} is your verification code. Never share it with anyone.` }],
  [
    14,
    {
      lane: 'transactional',
      text: (r) =>
        `Hi ${pick(r, NAMES)}, your order #${digits(r, 7)} has shipped and arrives ${pick(r, DAYS)}. Track it: https://t.example/${digits(r, 8)}`,
    },
  ],
  [
    10,
    {
      lane: 'transactional',
      text: (r) =>
        `Reminder: your appointment with Dr. ${pick(r, NAMES)} is tomorrow at ${between(r, 8, 18)}:${pick(r, ['00', '15', '30', '45'])}. Reply C to cancel.`,
    },
  ],
  [
    6,
    { lane: 'transactional', text: (r) => `Your ride is 3 min away: grey Toyota, plate ${digits(r, 3)}-AB.` },
  ],
  // GSM-7 with extension characters (€ [ ] count twice), two parts
  [
    10,
    {
      lane: 'bulk',
      text: (r, b) =>
        `${b} SUMMER SALE! Up to ${between(r, 20, 70)}% off everything this weekend [online & in store]. ` +
        `Orders over 50€ ship free. Use code SUN${digits(r, 4)} at checkout. Offer valid until ${pick(r, DAYS)} midnight, ` +
        'while stocks last. Reply STOP to opt out of marketing messages.',
    },
  ],
  [
    6,
    {
      lane: 'bulk',
      text: (r) =>
        `Dear ${pick(r, NAMES)}, thank you for being a loyal customer. Your points balance is ${digits(r, 4)} and ` +
        `${between(r, 100, 900)} points expire at the end of the month. Redeem them in the app for vouchers, ` +
        'free delivery or donations to our partner charities. See the terms at https://example.com/points',
    },
  ],
  // UCS-2
  [5, { lane: 'otp', text: (r) => `Ваш код подтверждения: ${digits(r, 6)}. Никому его не сообщайте.` }],
  [4, { lane: 'otp', text: (r) => `您的验证码是${digits(r, 6)}，10分钟内有效。请勿泄露给他人。` }],
  [3, { lane: 'otp', text: (r) => `رمز التحقق الخاص بك هو ${digits(r, 6)}` }],
  [
    4,
    { lane: 'transactional', text: (r) => `Your table is ready 🍕 Show code ${digits(r, 4)} at the door.` },
  ],
  [3, { lane: 'transactional', text: (r) => `Ο κωδικός σας είναι ${digits(r, 6)}. Ισχύει για 5 λεπτά.` }],
  [
    3,
    {
      lane: 'bulk',
      text: (r) =>
        `【セール】本日から週末まで全品${between(r, 10, 50)}%オフ！オンラインストアと全国の店舗でご利用いただけます。` +
        `クーポンコード SUN${digits(r, 4)} をご利用ください。配信停止はSTOPと返信してください。`,
    },
  ],
];
const TEXT_WEIGHT = TEXTS.reduce((sum, [w]) => sum + w, 0);

function pickText(r: Rand): TextShape {
  let x = r() * TEXT_WEIGHT;
  for (const [w, shape] of TEXTS) {
    x -= w;
    if (x < 0) return shape;
  }
  return TEXTS[0]![1];
}

function destination(r: Rand): NumberShape {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const shape = pick(r, NUMBER_SHAPES)(r);
    try {
      // The server's own rules: a benchmark must never send a request that would be rejected.
      normaliseDestination(shape.to, shape.country);
      return shape;
    } catch {
      // not a mobile number of that plan (a reserved block…): draw another
    }
  }
  throw new Error('bench: no valid destination number could be generated');
}

export function message(r: Rand, seq: number): SubmitInput {
  const { to, country } = destination(r);
  const brand = pick(r, BRANDS);
  const shape = pickText(r);
  const input: SubmitInput = {
    to,
    from: r() < 0.85 ? brand : pick(r, NUMERIC_SENDERS),
    text: shape.text(r, brand),
  };
  if (country) input.country = country;
  // The default lane is transactional: leave it out sometimes, as clients do.
  if (shape.lane !== 'transactional' || r() < 0.5) input.lane = shape.lane;
  if (r() < 0.5) input.client_ref = `bench-${seq}`;
  if (shape.lane === 'otp' && r() < 0.6) input.validity_minutes = 10;
  if (r() < 0.05) input.callback_url = 'https://hooks.example.com/relais/status';
  return input;
}

export function messages(seed: number, count: number, firstSeq = 0): SubmitInput[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => message(r, firstSeq + i));
}

export interface MixSummary {
  ucs2Share: number;
  multipartShare: number;
  meanSegments: number;
  lanes: Record<string, number>;
  countries: number;
}

/** What a set of messages looks like, for the report. */
export function summarise(inputs: readonly SubmitInput[]): MixSummary {
  let ucs2 = 0;
  let multipart = 0;
  let segments = 0;
  const lanes: Record<string, number> = { otp: 0, transactional: 0, bulk: 0 };
  const countries = new Set<string>();
  for (const input of inputs) {
    const a = analyzeText(input.text);
    if (a.encoding === 'UCS-2') ucs2++;
    if (a.segments > 1) multipart++;
    segments += a.segments;
    const lane = input.lane ?? 'transactional';
    lanes[lane] = (lanes[lane] ?? 0) + 1;
    countries.add(normaliseDestination(input.to, input.country).country ?? '?');
  }
  const n = inputs.length || 1;
  for (const lane of Object.keys(lanes)) lanes[lane] = lanes[lane]! / n;
  return {
    ucs2Share: ucs2 / n,
    multipartShare: multipart / n,
    meanSegments: segments / n,
    lanes,
    countries: countries.size,
  };
}
