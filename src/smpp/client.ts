import net from 'node:net';
import tls from 'node:tls';
import { CommandStatus, describeStatus, SMPP_VERSION_34 } from './constants.js';
import { type RequestHandler, type SessionOptions, SmppSession } from './session.js';

export type BindMode = 'transceiver' | 'transmitter' | 'receiver';

export interface BindOptions {
  host: string;
  port: number;
  /** TLS to the carrier; `true` for default verification, or Node TLS options. */
  tls?: boolean | tls.ConnectionOptions;
  mode: BindMode;
  systemId: string;
  password: string;
  systemType?: string;
  addrTon?: number;
  addrNpi?: number;
  addressRange?: string;
  connectTimeoutMs: number;
  session: SessionOptions;
  /**
   * Handler for requests from the SMSC (deliver_sm), installed before the bind is sent: carriers flush
   * queued receipts right after bind_resp, sometimes in the same TCP segment.
   */
  onRequest?: RequestHandler;
}

export class BindError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BindError';
  }
}

/** Opens a TCP (or TLS) connection to an SMSC and binds; resolves with the bound session. */
export async function bindToSmsc(options: BindOptions): Promise<SmppSession> {
  const socket = await connect(options);
  const session = new SmppSession(socket, options.session);
  if (options.onRequest) session.onRequest = options.onRequest;
  const command = `bind_${options.mode}` as const;
  let resp: Awaited<ReturnType<SmppSession['request']>>;
  try {
    resp = await session.request(command, {
      systemId: options.systemId,
      password: options.password,
      systemType: options.systemType ?? '',
      interfaceVersion: SMPP_VERSION_34,
      addrTon: options.addrTon ?? 0,
      addrNpi: options.addrNpi ?? 0,
      addressRange: options.addressRange ?? '',
    });
  } catch (err) {
    session.close('bind failed');
    throw new BindError(
      CommandStatus.ESME_RBINDFAIL,
      `bind to ${options.host}:${options.port} failed: ${(err as Error).message}`,
    );
  }
  if (resp.status !== CommandStatus.ESME_ROK) {
    session.close('bind refused');
    throw new BindError(
      resp.status,
      `bind refused by ${options.host}:${options.port}: ${describeStatus(resp.status)}`,
    );
  }
  return session;
}

function connect(options: BindOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.destroy();
      reject(
        new BindError(
          CommandStatus.ESME_RBINDFAIL,
          `cannot connect to ${options.host}:${options.port}: ${err.message}`,
        ),
      );
    };
    const socket: net.Socket = options.tls
      ? tls.connect({ host: options.host, port: options.port, ...(options.tls === true ? {} : options.tls) })
      : net.connect({ host: options.host, port: options.port });
    socket.setTimeout(options.connectTimeoutMs, () => onError(new Error('connect timeout')));
    socket.once('error', onError);
    socket.once(options.tls ? 'secureConnect' : 'connect', () => {
      socket.setTimeout(0);
      socket.removeListener('error', onError);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
  });
}
