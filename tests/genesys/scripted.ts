// One AudioHook session driven by Genesys's reference client library, as a platform would: stream
// an 8 kHz WAV in real time and, at the times given, pause and resume the stream, report audio
// discarded, and update the conversation's language. The tests copy this file beside the
// reference client (it imports the client's modules) and read its log: pino's JSON, one line per
// record, level 40 and up for warnings.
//
//   ts-node rtser_scripted.ts URI API_KEY CLIENT_SECRET WAV '[[2, "pause"], [4, "resume"],
//       [6, "discard", 1.0], [7, "update", "it-IT"]]'
import { pino } from 'pino';
import { v4 as uuid } from 'uuid';
import { createClientSession, StreamDuration } from '../../app/audiohook';
import { createClientWebSocket } from './clientwebsocket';
import { createWavMediaSource } from './mediasource-wav';

type Step = [number, 'pause' | 'resume' | 'discard' | 'update', ...(string | number)[]];

const main = async (): Promise<void> => {
    const [uri, apiKey, secret, wav, script] = process.argv.slice(2);
    const logger = pino({ level: 'debug' });
    const session = createClientSession({
        uri,
        mediaSource: await createWavMediaSource(wav),
        organizationId: uuid(),
        sessionId: uuid(),
        conversationId: uuid(),
        participant: { id: uuid(), ani: '+1-555-555-1234', aniName: 'John Doe', dnis: '+1-800-555-6789' },
        createWebSocket: createClientWebSocket,
        logger,
        authInfo: { apiKey, clientSecret: Buffer.from(secret, 'base64') },
    });
    const timers = (JSON.parse(script) as Step[]).map(([at, action, ...args]) => setTimeout(() => {
        logger.info(`scripted ${action} ${JSON.stringify(args)}`);
        if (action === 'pause') {
            void session.pausing();
        } else if (action === 'resume') {
            void session.resuming(StreamDuration.zero.asDuration(), StreamDuration.zero.asDuration());
        } else if (action === 'discard') {
            const start = StreamDuration.fromSeconds(at).asDuration();
            void session.discarding(start, StreamDuration.fromSeconds(Number(args[0])).asDuration());
        } else {
            void session.updating(String(args[0]));
        }
    }, at * 1000));
    session.once('disconnected', () => {
        timers.forEach(clearTimeout);
        logger.info('disconnected');
        setImmediate(() => process.exit(0));
    });
};

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
