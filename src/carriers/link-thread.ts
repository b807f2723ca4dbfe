import { parentPort } from 'node:worker_threads';
import { bindToSmsc } from '../smpp/client.js';
import { CommandStatus, Ton } from '../smpp/constants.js';
import { createPdu, type Pdu } from '../smpp/pdu.js';
import { parseReceipt } from '../smpp/receipt.js';
import type { SmppSession } from '../smpp/session.js';
import { getMessagePayload } from '../smpp/tlv.js';
import {
  type Batch,
  type BindRequest,
  Ev,
  OP_LENGTH,
  Op,
  RecordBatcher,
  readSubmit,
} from './link-protocol.js';

/**
 * The carrier link thread (carrier-link.ts is the main thread's side): it holds every SMPP session of
 * every connector, and does their socket I/O, PDU encoding and decoding, and receipt parsing. The main
 * thread keeps the policy (windows, TPS, retries, what a receipt means) and the database.
 */
const port = parentPort!;
const sessions = new Map<number, SmppSession>();
const events = new RecordBatcher((batch) => port.postMessage(batch));
const post = (...record: Batch) => events.push(...record);

port.on('message', (batch: Batch) => {
  for (let at = 0; at < batch.length; at += 1 + OP_LENGTH[batch[at] as number]!) {
    const bindId = batch[at + 1] as number;
    switch (batch[at]) {
      case Op.BIND:
        void bind(bindId, batch[at + 2] as BindRequest);
        break;
      case Op.SUBMIT:
        submit(bindId, batch[at + 2] as number, batch, at);
        break;
      case Op.ACK:
        sessions.get(bindId)?.respond(
          createPdu('deliver_sm_resp', {
            sequence: batch[at + 2] as number,
            status: batch[at + 3] as number,
          }),
        );
        break;
      case Op.UNBIND:
        void sessions.get(bindId)?.unbind(batch[at + 2] as number);
        break;
      default:
        throw new Error(`carrier link thread: unknown opcode ${String(batch[at])}`);
    }
  }
});

async function bind(bindId: number, request: BindRequest): Promise<void> {
  let session: SmppSession;
  try {
    session = await bindToSmsc({ ...request, onRequest: (pdu, s) => onIncoming(bindId, pdu, s) });
  } catch (err) {
    post(Ev.BIND_FAILED, bindId, (err as Error).message);
    return;
  }
  sessions.set(bindId, session);
  session.once('close', (reason: string) => {
    sessions.delete(bindId);
    post(Ev.CLOSED, bindId, reason);
  });
  post(Ev.BOUND, bindId);
}

function submit(bindId: number, token: number, batch: Batch, at: number): void {
  const session = sessions.get(bindId);
  if (!session) {
    post(Ev.NO_ANSWER, token, 'SMPP session closed');
    return;
  }
  session.request('submit_sm', readSubmit(batch, at)).then(
    (resp) => post(Ev.ANSWER, token, resp.status, resp.command === 'submit_sm_resp' ? resp.messageId : null),
    (err: Error) => post(Ev.NO_ANSWER, token, err.message),
  );
}

/** deliver_sm from the carrier: a receipt or an inbound message, answered once the main thread says. */
function onIncoming(bindId: number, pdu: Pdu, session: SmppSession): void {
  if (pdu.command !== 'deliver_sm') {
    session.rejectRequest(pdu, CommandStatus.ESME_RINVCMDID);
    return;
  }
  const receipt = parseReceipt(pdu);
  if (receipt) {
    post(
      Ev.RECEIPT,
      bindId,
      pdu.sequence,
      receipt.carrierId,
      receipt.state,
      receipt.errorCode,
      receipt.submitDate?.getTime() ?? null,
      receipt.doneDate?.getTime() ?? null,
    );
    return;
  }
  // A long MO may come whole in message_payload, with an empty short_message.
  const body = pdu.shortMessage.length > 0 ? pdu.shortMessage : (getMessagePayload(pdu) ?? Buffer.alloc(0));
  post(
    Ev.INBOUND,
    bindId,
    pdu.sequence,
    // TON 1 (international): the carrier left out the +; say so, the number is unambiguous.
    pdu.sourceAddrTon === Ton.INTERNATIONAL && /^\d+$/.test(pdu.sourceAddr)
      ? `+${pdu.sourceAddr}`
      : pdu.sourceAddr,
    pdu.destinationAddr,
    pdu.dataCoding,
    pdu.esmClass,
    body.toString('latin1'),
  );
}
