import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeGsm7, decodeUcs2, encodeGsm7 } from '../src/messages/encoding.js';
import { parseCommand, runSimulatorCommand } from '../src/simulator/cli.js';
import type { SimulatorOptionsInput } from '../src/simulator/options.js';
import { startControlServer } from '../src/simulator/server-control.js';
import { CarrierSimulator } from '../src/simulator/simulator.js';
import { BindError, type BindMode, bindToSmsc } from '../src/smpp/client.js';
import { decodePdu } from '../src/smpp/codec.js';
import { CommandStatus, DataCoding, EsmClass, MessageState, TlvTag } from '../src/smpp/constants.js';
import { PduFramer } from '../src/smpp/framing.js';
import { buildSubmitParts } from '../src/smpp/long-message.js';
import {
  createPdu,
  type DeliverSmPdu,
  findTlv,
  getMessageState,
  getNetworkErrorCode,
  getReceiptedMessageId,
  type Pdu,
} from '../src/smpp/pdu.js';
import { normaliseCarrierId, parseReceipt, parseReceiptText } from '../src/smpp/receipt.js';
import { type Outgoing, SmppSession } from '../src/smpp/session.js';

/**
 * The carrier simulator over real TCP, driven by the platform's own SMPP client (bindToSmsc): binds,
 * ids, receipts (timing, content, id formats, ordering), failure injection (rejects, UNDELIV, throttling,
 * dropped connections, stalls), the window seen from the carrier side, concatenated parts, MO, queued
 * deliveries, garbage input, the `relais sim` command and its HTTP control port.
 */

const SESSION = { responseTimeoutMs: 5000, enquireLinkIntervalMs: 0 };

const running: CarrierSimulator[] = [];
const sessions: SmppSession[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) s.close('test over');
  await Promise.all(running.splice(0).map((sim) => sim.stop()));
});

async function startSim(
  options: SimulatorOptionsInput = {},
): Promise<{ sim: CarrierSimulator; port: number }> {
  const sim = new CarrierSimulator({ port: 0, receipt_delay_ms: 20, ...options });
  running.push(sim);
  const { port } = await sim.start();
  return { sim, port };
}

async function bind(
  port: number,
  mode: BindMode = 'transceiver',
  systemId = 'esme',
  password = 'secret',
): Promise<SmppSession> {
  const session = await bindToSmsc({
    host: '127.0.0.1',
    port,
    mode,
    systemId,
    password,
    connectTimeoutMs: 2000,
    session: SESSION,
  });
  sessions.push(session);
  return session;
}

/** Answers every deliver_sm with ESME_ROK (or `status`) and collects them. */
function receiveInto(session: SmppSession, status: () => number = () => 0): DeliverSmPdu[] {
  const got: DeliverSmPdu[] = [];
  session.onRequest = (pdu, s) => {
    if (pdu.command !== 'deliver_sm') return s.rejectRequest(pdu, CommandStatus.ESME_RINVCMDID);
    got.push(pdu);
    s.respond(createPdu('deliver_sm_resp', { sequence: pdu.sequence, status: status() }));
  };
  return got;
}

/** The commands as they arrive on the client's socket, in wire order. */
function wireLog(session: SmppSession): string[] {
  const log: string[] = [];
  const framer = new PduFramer();
  session.socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    for (const frame of framer) {
      const decoded = decodePdu(frame);
      if (decoded.ok) log.push(decoded.pdu.command);
    }
  });
  return log;
}

function message(text = 'Hello from Relais', extra: Outgoing<'submit_sm'> = {}): Outgoing<'submit_sm'> {
  return {
    sourceAddrTon: 5,
    sourceAddr: 'Relais',
    destAddrTon: 1,
    destAddrNpi: 1,
    destinationAddr: '33612345678',
    registeredDelivery: 1,
    shortMessage: encodeGsm7(text),
    ...extra,
  };
}

async function submit(session: SmppSession, body: Outgoing<'submit_sm'> = message()) {
  const resp = await session.request('submit_sm', body);
  return { status: resp.status, messageId: 'messageId' in resp ? resp.messageId : '' };
}

async function waitFor<T>(probe: () => T | null | undefined | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('binds', () => {
  it('accepts any bind when no accounts are configured', async () => {
    const { sim, port } = await startSim();
    await bind(port, 'transceiver', 'anyone', 'whatever');
    await bind(port, 'transmitter', 'other', '');
    expect(sim.stats()).toMatchObject({ binds: 2, boundSessions: 2, bindsRefused: 0 });
    expect(sim.sessions().map((s) => s.mode)).toEqual(['transceiver', 'transmitter']);
  });

  it('checks system_id and password against the configured accounts', async () => {
    const { sim, port } = await startSim({ accounts: [{ system_id: 'acme', password: 'pw1' }] });
    await bind(port, 'transceiver', 'acme', 'pw1');
    const wrongPassword = await bind(port, 'transceiver', 'acme', 'nope').catch((e: unknown) => e);
    expect(wrongPassword).toBeInstanceOf(BindError);
    expect((wrongPassword as BindError).status).toBe(CommandStatus.ESME_RINVPASWD);
    const unknown = await bind(port, 'transceiver', 'ghost', 'pw1').catch((e: unknown) => e);
    expect((unknown as BindError).status).toBe(CommandStatus.ESME_RINVSYSID);
    expect(sim.stats()).toMatchObject({ binds: 1, bindsRefused: 2 });
  });

  it('answers a submit_sm before bind with ESME_RINVBNDSTS, and a second bind with ESME_RALYBND', async () => {
    const { sim, port } = await startSim();
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const raw = new SmppSession(socket, SESSION);
    sessions.push(raw);
    expect((await raw.request('submit_sm', message())).status).toBe(CommandStatus.ESME_RINVBNDSTS);
    expect(sim.stats().submitsReceived).toBe(0);

    const bound = await bind(port);
    const again = await bound.request('bind_transceiver', { systemId: 'esme', password: 'secret' });
    expect(again.status).toBe(CommandStatus.ESME_RALYBND);
  });

  it('refuses submits on a receiver bind', async () => {
    const { port } = await startSim();
    const rx = await bind(port, 'receiver');
    expect((await submit(rx)).status).toBe(CommandStatus.ESME_RINVBNDSTS);
  });
});

describe('submits and receipts', () => {
  it('answers with hex ids by default and decimal ids when configured', async () => {
    const hex = await startSim();
    const a = await submit(await bind(hex.port));
    expect(a.status).toBe(0);
    expect(a.messageId).toMatch(/^[0-9a-f]{10}$/);

    const dec = await startSim({ message_id_format: 'decimal' });
    const b = await submit(await bind(dec.port));
    expect(b.messageId).toMatch(/^[0-9]+$/);
    expect(dec.sim.received[0]).toMatchObject({
      messageId: b.messageId,
      status: 0,
      text: 'Hello from Relais',
    });
  });

  it('sends a delivery receipt after receipt_delay_ms, with the Appendix B text and the TLVs', async () => {
    const { sim, port } = await startSim({ receipt_delay_ms: 60 });
    const session = await bind(port);
    const got = receiveInto(session);
    const sentAt = performance.now();
    const { messageId } = await submit(session);
    const pdu = await waitFor(() => got[0]);
    const elapsed = performance.now() - sentAt;
    expect(elapsed).toBeGreaterThanOrEqual(55);
    expect(elapsed).toBeLessThan(1000);

    expect(pdu.esmClass).toBe(EsmClass.TYPE_DELIVERY_RECEIPT);
    expect(pdu.sourceAddr).toBe('33612345678');
    expect(pdu.destinationAddr).toBe('Relais');
    expect(pdu.destAddrTon).toBe(5);
    const receipt = parseReceipt(pdu);
    expect(receipt).not.toBeNull();
    expect(normaliseCarrierId(receipt!.carrierId, 'hex')).toBe(normaliseCarrierId(messageId, 'hex'));
    expect(receipt!.state).toBe('delivered');
    expect(receipt!.errorCode).toBe('000');
    expect(receipt!.submitDate).toBeInstanceOf(Date);
    expect(getReceiptedMessageId(pdu)).toBe(messageId);
    expect(getMessageState(pdu)).toBe(MessageState.DELIVERED);
    expect(findTlv(pdu, TlvTag.network_error_code)).toBeNull();
    const text = pdu.shortMessage.toString('latin1');
    expect(text).toMatch(
      /^id:[0-9a-f]+ sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:DELIVRD err:000 text:Hello from Relais$/,
    );
    await waitFor(() => sim.stats().receiptsAcknowledged === 1);
    expect(sim.stats()).toMatchObject({ submitsAccepted: 1, receiptsSent: 1 });
  });

  it('sends no receipt when registered_delivery does not ask for one, or only for failures', async () => {
    const { sim, port } = await startSim({ receipt_delay_ms: 0 });
    const session = await bind(port);
    const got = receiveInto(session);
    await submit(session, message('a', { registeredDelivery: 0 }));
    await submit(session, message('b', { registeredDelivery: 2 }));
    await sleep(50);
    expect(got).toHaveLength(0);
    expect(sim.stats().receiptsSent).toBe(0);
  });

  it('writes decimal ids in the receipt text when receipt_id_format is decimal, keeping hex in the TLV', async () => {
    const { port } = await startSim({ receipt_id_format: 'decimal' });
    const session = await bind(port);
    const got = receiveInto(session);
    const { messageId } = await submit(session);
    const pdu = await waitFor(() => got[0]);
    const textId = parseReceiptText(pdu.shortMessage.toString('latin1')).get('id')!;
    expect(textId).toBe(BigInt(`0x${messageId}`).toString(10));
    expect(getReceiptedMessageId(pdu)).toBe(messageId);
    expect(normaliseCarrierId(textId, 'decimal')).toBe(normaliseCarrierId(messageId, 'hex'));
  });

  it('sends the receipt before the submit_sm_resp when receipt_before_response is set', async () => {
    const early = await startSim({ receipt_before_response: true, receipt_delay_ms: 0 });
    const session = await bind(early.port);
    const wire = wireLog(session);
    const got = receiveInto(session);
    const { messageId } = await submit(session);
    expect(got).toHaveLength(1);
    expect(getReceiptedMessageId(got[0]!)).toBe(messageId);
    expect(wire.filter((c) => c === 'deliver_sm' || c === 'submit_sm_resp')).toEqual([
      'deliver_sm',
      'submit_sm_resp',
    ]);

    // The normal order, as a control.
    const late = await startSim({ receipt_delay_ms: 0 });
    const other = await bind(late.port);
    const wire2 = wireLog(other);
    const got2 = receiveInto(other);
    await submit(other);
    await waitFor(() => got2[0]);
    expect(wire2.filter((c) => c === 'deliver_sm' || c === 'submit_sm_resp')).toEqual([
      'submit_sm_resp',
      'deliver_sm',
    ]);
  });

  it('records concatenated parts with their UDH', async () => {
    const { sim, port } = await startSim({ receipts: false });
    const session = await bind(port);
    const text = 'Concatenated message number one. '.repeat(12).trim();
    const parts = buildSubmitParts(text, 42);
    expect(parts).toHaveLength(3);
    for (const part of parts) {
      const { status } = await submit(
        session,
        message('', {
          esmClass: part.esmClass,
          dataCoding: part.dataCoding,
          shortMessage: part.shortMessage,
        }),
      );
      expect(status).toBe(0);
    }
    expect(sim.received.map((r) => r.udh)).toEqual([
      { reference: 42, total: 3, seq: 1 },
      { reference: 42, total: 3, seq: 2 },
      { reference: 42, total: 3, seq: 3 },
    ]);
    expect(sim.received.map((r) => r.text).join('')).toBe(text);
    expect(sim.received.every((r) => r.esmClass === EsmClass.UDHI && r.systemId === 'esme')).toBe(true);
  });

  it('decodes UCS-2 submits', async () => {
    const { sim, port } = await startSim({ receipts: false });
    const session = await bind(port);
    const text = 'Привет 👋';
    await submit(
      session,
      message('', { dataCoding: DataCoding.UCS2, shortMessage: Buffer.from(text, 'utf16le').swap16() }),
    );
    expect(sim.received[0]!.text).toBe(text);
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const { sim, port } = await startSim({
        seed: 1234,
        reject_rate: 0.3,
        undeliverable_rate: 0.3,
        receipts: false,
      });
      const session = await bind(port);
      for (let i = 0; i < 20; i++) await submit(session);
      return sim.received.map((r) => [r.messageId, r.status]);
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(first.some(([, status]) => status !== 0)).toBe(true);
  });
});

describe('failure injection', () => {
  it('rejects every submit with reject_status when reject_rate is 1', async () => {
    const { sim, port } = await startSim({ reject_rate: 1 });
    const session = await bind(port);
    const results = await Promise.all(Array.from({ length: 10 }, () => submit(session)));
    expect(results.every((r) => r.status === CommandStatus.ESME_RSUBMITFAIL && r.messageId === '')).toBe(
      true,
    );
    expect(sim.stats()).toMatchObject({ submitsRejected: 10, submitsAccepted: 0 });
    expect(sim.received.every((r) => r.messageId === null)).toBe(true);

    sim.setOptions({ reject_rate: 1, reject_status: CommandStatus.ESME_RINVDSTADR });
    expect((await submit(session)).status).toBe(CommandStatus.ESME_RINVDSTADR);
  });

  it('sends UNDELIV receipts when undeliverable_rate is 1', async () => {
    const { port } = await startSim({ undeliverable_rate: 1 });
    const session = await bind(port);
    const got = receiveInto(session);
    const { status, messageId } = await submit(session);
    expect(status).toBe(0);
    const pdu = await waitFor(() => got[0]);
    const receipt = parseReceipt(pdu)!;
    expect(receipt).toMatchObject({ state: 'undeliverable', errorCode: '001' });
    expect(normaliseCarrierId(receipt.carrierId, 'hex')).toBe(messageId);
    expect(pdu.shortMessage.toString('latin1')).toContain('stat:UNDELIV err:001');
    expect(getMessageState(pdu)).toBe(MessageState.UNDELIVERABLE);
    expect(getNetworkErrorCode(pdu)).toEqual({ networkType: 3, errorCode: 1 });
  });

  it('sends EXPIRED receipts when expired_rate is 1', async () => {
    const { port } = await startSim({ expired_rate: 1 });
    const session = await bind(port);
    const got = receiveInto(session);
    await submit(session);
    const pdu = await waitFor(() => got[0]);
    expect(parseReceipt(pdu)!.state).toBe('expired');
    expect(getMessageState(pdu)).toBe(MessageState.EXPIRED);
  });

  it('throttles beyond throttle_tps over a sliding second, and stops when turned off', async () => {
    const { sim, port } = await startSim({ throttle_tps: 50, receipts: false });
    const session = await bind(port);
    const results = await Promise.all(Array.from({ length: 200 }, () => submit(session)));
    const accepted = results.filter((r) => r.status === 0).length;
    const throttled = results.filter((r) => r.status === CommandStatus.ESME_RTHROTTLED).length;
    expect(accepted).toBeGreaterThanOrEqual(49);
    expect(accepted).toBeLessThanOrEqual(51);
    expect(accepted + throttled).toBe(200);
    expect(sim.stats()).toMatchObject({ submitsThrottled: throttled, submitsAccepted: accepted });
    expect(sim.stats().maxTpsObserved).toBeGreaterThanOrEqual(200);

    sim.setOptions({ throttle_tps: 0 });
    expect((await submit(session)).status).toBe(0);
    sim.setOptions({ throttle_tps: 50 });
    expect((await submit(session)).status).toBe(CommandStatus.ESME_RTHROTTLED);
  });

  it('drops the connection on every Nth submit', async () => {
    const { sim, port } = await startSim({ drop_after_submits: 3, receipts: false });
    const session = await bind(port);
    const closed = new Promise<string>((resolve) => session.once('close', resolve));
    expect((await submit(session)).status).toBe(0);
    expect((await submit(session)).status).toBe(0);
    await expect(submit(session)).rejects.toThrow(/closed/);
    await closed;
    expect(sim.stats()).toMatchObject({ connectionsDropped: 1, submitsReceived: 3, submitsAccepted: 2 });
    expect(sim.received[2]).toMatchObject({ messageId: null, status: null });
    await waitFor(() => sim.stats().boundSessions === 0);

    // Counted across binds: the 6th submit, on a new bind, drops again.
    const next = await bind(port);
    await submit(next);
    await submit(next);
    await expect(submit(next)).rejects.toThrow(/closed/);
    expect(sim.stats().connectionsDropped).toBe(2);
  });

  it('stalls for stall_ms on every Nth submit, answering nothing meanwhile', async () => {
    const { sim, port } = await startSim({ stall_every_submits: 3, stall_ms: 250, receipts: false });
    const a = await bind(port);
    const b = await bind(port);
    let t = performance.now();
    await submit(a);
    await submit(a);
    expect(performance.now() - t).toBeLessThan(200);

    t = performance.now();
    const stalled = submit(a).then(() => performance.now() - t);
    await sleep(30);
    const during = submit(b).then(() => performance.now() - t);
    expect(await stalled).toBeGreaterThanOrEqual(240);
    expect(await during).toBeGreaterThanOrEqual(240);
    expect(sim.stats().stalls).toBe(1);

    t = performance.now();
    await submit(b); // the 5th: no stall
    expect(performance.now() - t).toBeLessThan(200);
  });

  it('delays responses by submit_response_delay_ms and reports the window in use as maxOutstanding', async () => {
    const { sim, port } = await startSim({ submit_response_delay_ms: 50, receipts: false });
    const session = await bind(port);
    const t = performance.now();
    const results = await Promise.all(Array.from({ length: 100 }, () => submit(session)));
    expect(performance.now() - t).toBeGreaterThanOrEqual(45);
    expect(results.every((r) => r.status === 0)).toBe(true);
    expect(sim.stats()).toMatchObject({ maxOutstanding: 100, outstanding: 0 });
  });
});

describe('deliveries to the ESME', () => {
  it('sends MO to a transceiver, GSM-7 or UCS-2', async () => {
    const { sim, port } = await startSim();
    const session = await bind(port);
    const got: DeliverSmPdu[] = [];
    session.onRequest = (pdu, s) => {
      got.push(pdu as DeliverSmPdu);
      s.respond(createPdu('deliver_sm_resp', { sequence: pdu.sequence }));
    };
    expect(await sim.sendMo({ from: '+33612345678', to: '38000', text: 'STOP' })).toBe(0);
    expect(got).toHaveLength(1);
    const mo = got[0]!;
    expect(mo.command).toBe('deliver_sm');
    expect(mo.esmClass).toBe(0);
    expect(mo.dataCoding).toBe(DataCoding.SMSC_DEFAULT);
    expect(decodeGsm7(mo.shortMessage)).toBe('STOP');
    expect(mo).toMatchObject({ sourceAddr: '33612345678', sourceAddrTon: 1, destinationAddr: '38000' });

    expect(await sim.sendMo({ from: '+33612345678', to: '38000', text: 'Спасибо' })).toBe(0);
    expect(got[1]!.dataCoding).toBe(DataCoding.UCS2);
    expect(decodeUcs2(got[1]!.shortMessage)).toBe('Спасибо');
    expect(sim.stats()).toMatchObject({ moSent: 2, moAcknowledged: 2 });
  });

  it('resolves sendMo with the ESME status and redelivers after an error', async () => {
    const { sim, port } = await startSim({ redelivery_delay_ms: 20 });
    const session = await bind(port);
    let calls = 0;
    const got = receiveInto(session, () => (calls++ === 0 ? CommandStatus.ESME_RX_T_APPN : 0));
    expect(await sim.sendMo({ from: '+33612345678', to: '38000', text: 'hi' })).toBe(
      CommandStatus.ESME_RX_T_APPN,
    );
    await waitFor(() => sim.stats().moAcknowledged === 1);
    expect(got).toHaveLength(2);
    expect(sim.stats()).toMatchObject({ moSent: 2, moRefused: 1, moAcknowledged: 1, redeliveries: 1 });
  });

  it('queues receipts and MO while no receiver is bound and delivers them when one binds', async () => {
    const { sim, port } = await startSim({ receipt_delay_ms: 5 });
    const tx = await bind(port, 'transmitter', 'acme');
    const { messageId } = await submit(tx);
    const mo = sim.sendMo({ from: '+33611111111', to: '38000', text: 'queued MO', systemId: 'acme' });
    await waitFor(() => sim.stats().queued === 2);

    const rx = await bind(port, 'receiver', 'acme');
    const got = receiveInto(rx);
    expect(await mo).toBe(0);
    await waitFor(() => got.length === 2);
    const receipt = got.find((p) => p.esmClass === EsmClass.TYPE_DELIVERY_RECEIPT)!;
    expect(getReceiptedMessageId(receipt)).toBe(messageId);
    expect(sim.stats().queued).toBe(0);
  });

  it('spreads receipts round-robin over the receivers of the same system_id only', async () => {
    const { port } = await startSim({ receipt_delay_ms: 0 });
    const tx = await bind(port, 'transmitter', 'acme');
    const rx1 = await bind(port, 'receiver', 'acme');
    const rx2 = await bind(port, 'receiver', 'acme');
    const stranger = await bind(port, 'receiver', 'other');
    const got1 = receiveInto(rx1);
    const got2 = receiveInto(rx2);
    const got3 = receiveInto(stranger);
    await sleep(40); // receivers start taking deliveries shortly after their bind
    await Promise.all(Array.from({ length: 10 }, () => submit(tx)));
    await waitFor(() => got1.length + got2.length === 10);
    expect(got1.length).toBe(5);
    expect(got2.length).toBe(5);
    expect(got3).toHaveLength(0);
  });
});

describe('robustness', () => {
  it('answers garbage with generic_nack and keeps serving other sessions', async () => {
    const { sim, port } = await startSim({ receipts: false });
    const good = await bind(port);

    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    const received: Pdu[] = [];
    const framer = new PduFramer();
    socket.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (const frame of framer) {
        const d = decodePdu(frame);
        if (d.ok) received.push(d.pdu);
      }
    });
    const closed = new Promise((r) => socket.once('close', r));
    // A well-framed PDU with an unknown command_id, then bytes that cannot be framed at all.
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32BE(16, 0);
    unknown.writeUInt32BE(0x00000999, 4);
    unknown.writeUInt32BE(7, 12);
    socket.write(unknown);
    await waitFor(() => received.length === 1);
    expect(received[0]).toMatchObject({
      command: 'generic_nack',
      sequence: 7,
      status: CommandStatus.ESME_RINVCMDID,
    });
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(received[1]).toMatchObject({ command: 'generic_nack', status: CommandStatus.ESME_RINVCMDLEN });

    expect((await submit(good)).status).toBe(0);
    const later = await bind(port);
    expect((await submit(later)).status).toBe(0);
    expect(sim.stats().submitsAccepted).toBe(2);
  });

  it('validates options, also when changed live', async () => {
    expect(() => new CarrierSimulator({ reject_rate: 2 })).toThrow(/reject_rate/);
    expect(() => new CarrierSimulator({ undeliverable_rate: 0.7, expired_rate: 0.7 })).toThrow(/exceed 1/);
    expect(() => new CarrierSimulator({ bogus: 1 } as SimulatorOptionsInput)).toThrow(/bogus/);
    const sim = new CarrierSimulator({});
    expect(() => sim.setOptions({ throttle_tps: -1 })).toThrow(/throttle_tps/);
    expect(sim.getOptions()).toMatchObject({ port: 2775, receipt_delay_ms: 200, message_id_format: 'hex' });
  });
});

describe('relais sim', () => {
  it('starts from flags, logs its ports, serves SMPP and the control port, and stops on abort', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    stdout.on('data', (d) => {
      out += d;
    });
    const abort = new AbortController();
    const exit = runSimulatorCommand(
      ['--port', '0', '--control-port', '0', '--receipt-delay-ms', '10', '--seed', '7', '--record-submits'],
      { stdout, stderr, signal: abort.signal },
    );
    const line = await waitFor(() => out.split('\n').find((l) => l.includes('listening')));
    const started = JSON.parse(line) as { port: number; control_port: number };
    expect(started.port).toBeGreaterThan(0);
    expect(started.control_port).toBeGreaterThan(0);

    const session = await bind(started.port);
    const got = receiveInto(session);
    expect((await submit(session)).status).toBe(0);
    await waitFor(() => got.length === 1);

    const control = `http://127.0.0.1:${started.control_port}`;
    const stats = (await (await fetch(`${control}/stats`)).json()) as Record<string, number>;
    expect(stats).toMatchObject({ binds: 1, submitsAccepted: 1 });

    const changed = await fetch(`${control}/options`, {
      method: 'POST',
      body: JSON.stringify({ reject_rate: 1 }),
    });
    expect(changed.status).toBe(200);
    expect((await submit(session)).status).toBe(CommandStatus.ESME_RSUBMITFAIL);
    const bad = await fetch(`${control}/options`, {
      method: 'POST',
      body: JSON.stringify({ reject_rate: 'x' }),
    });
    expect(bad.status).toBe(400);

    const mo = await fetch(`${control}/mo`, {
      method: 'POST',
      body: JSON.stringify({ from: '+33612345678', to: '38000', text: 'via HTTP' }),
    });
    expect(await mo.json()).toEqual({ status: 0 });
    expect(decodeGsm7(got[1]!.shortMessage)).toBe('via HTTP');
    const records = (await (await fetch(`${control}/received?limit=1`)).json()) as unknown[];
    expect(records).toHaveLength(1);

    abort.abort();
    expect(await exit).toBe(0);
    await waitFor(() => session.closed);
  });

  it('rejects bad flags and options with exit code 2', async () => {
    const run = async (args: string[]) => {
      const stderr = new PassThrough();
      let err = '';
      stderr.on('data', (d) => {
        err += d;
      });
      const code = await runSimulatorCommand(args, { stdout: new PassThrough(), stderr });
      return { code, err };
    };
    expect(await run(['--reject-rate', 'lots'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('--reject-rate'),
    });
    expect(await run(['--reject-rate', '3'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('reject_rate'),
    });
    expect(await run(['--frobnicate'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('frobnicate'),
    });
    expect(await run(['--port', '70000'])).toMatchObject({ code: 2, err: expect.stringContaining('port') });
  });

  it('reads a YAML --config, flags winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-sim-'));
    try {
      const file = join(dir, 'sim.yaml');
      writeFileSync(
        file,
        [
          'port: 2900',
          'control_port: 2901',
          'receipt_id_format: decimal',
          'undeliverable_rate: 0.25',
          'accounts:',
          '  - { system_id: acme, password: pw }',
          'throttle_tps: 100',
        ].join('\n'),
      );
      const parsed = parseCommand(['--config', file, '--throttle-tps', '20']);
      expect(parsed.controlPort).toBe(2901);
      expect(parsed.options).toMatchObject({
        port: 2900,
        receipt_id_format: 'decimal',
        undeliverable_rate: 0.25,
        throttle_tps: 20,
        accounts: [{ system_id: 'acme', password: 'pw' }],
        record_submits: false,
      });
      writeFileSync(file, 'reciept_delay_ms: 5\n');
      expect(() => parseCommand(['--config', file])).toThrow(/reciept_delay_ms/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves the control port for a simulator started in-process', async () => {
    const { sim } = await startSim();
    const control = await startControlServer(sim, { port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${control.port}/stats`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ binds: 0, submitsReceived: 0 });
      const queued = await fetch(`http://127.0.0.1:${control.port}/mo`, {
        method: 'POST',
        body: JSON.stringify({ from: '+33612345678', to: '38000', text: 'later' }),
      });
      expect(queued.status).toBe(202);
      expect(sim.stats().queued).toBe(1);
      expect((await fetch(`http://127.0.0.1:${control.port}/nope`)).status).toBe(404);
    } finally {
      await control.close();
    }
  });
});
