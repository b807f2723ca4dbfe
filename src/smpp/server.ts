import net from 'node:net';
import tls from 'node:tls';
import { CommandStatus } from './constants.js';
import { createPdu, type Pdu } from './pdu.js';
import { type SessionOptions, SmppSession } from './session.js';

export interface BindRequest {
  mode: 'transceiver' | 'transmitter' | 'receiver';
  systemId: string;
  password: string;
  systemType: string;
}

export interface SmscServerOptions {
  session: SessionOptions;
  /** Our system_id, sent in bind responses. */
  systemId: string;
  /** Decides a bind: ESME_ROK, or the status to refuse it with (ESME_RINVPASWD, ESME_RINVSYSID…). */
  authenticate(bind: BindRequest): number | Promise<number>;
  /** A session is bound: the owner sets `session.onRequest` to serve its submits. */
  onBound(session: SmppSession, bind: BindRequest): void;
  /** SMPP over TLS (certificate, key, and a CA when client certificates are required); plain TCP without. */
  tls?: tls.TlsOptions;
}

const BIND_COMMANDS = new Set(['bind_transceiver', 'bind_transmitter', 'bind_receiver']);

/**
 * The SMSC side of SMPP: accepts connections, requires a bind before anything else (ESME_RINVBNDSTS
 * otherwise), authenticates it, then hands the bound session to its owner.
 */
export function createSmscServer(options: SmscServerOptions): net.Server {
  const serve = (socket: net.Socket) => {
    const session = new SmppSession(socket, options.session);
    let bound = false;
    session.onRequest = (pdu: Pdu) => {
      if (bound) return session.rejectRequest(pdu, CommandStatus.ESME_RALYBND);
      if (!BIND_COMMANDS.has(pdu.command)) return session.rejectRequest(pdu, CommandStatus.ESME_RINVBNDSTS);
      const bindPdu = pdu as Extract<
        Pdu,
        { command: 'bind_transceiver' | 'bind_transmitter' | 'bind_receiver' }
      >;
      const bind: BindRequest = {
        mode: bindPdu.command.slice('bind_'.length) as BindRequest['mode'],
        systemId: bindPdu.systemId,
        password: bindPdu.password,
        systemType: bindPdu.systemType,
      };
      const respCommand = `${bindPdu.command}_resp` as const;
      // A throwing authenticate (sync or async) refuses the bind instead of crashing the process.
      void Promise.resolve()
        .then(() => options.authenticate(bind))
        .catch(() => CommandStatus.ESME_RBINDFAIL)
        .then((status) => {
          if (status !== CommandStatus.ESME_ROK) {
            session.respond(createPdu(respCommand, { sequence: pdu.sequence, status }));
            setTimeout(() => session.close('bind refused'), 50).unref();
            return;
          }
          bound = true;
          session.respond(createPdu(respCommand, { sequence: pdu.sequence, systemId: options.systemId }));
          options.onBound(session, bind);
        });
    };
  };
  return options.tls ? tls.createServer(options.tls, serve) : net.createServer(serve);
}
