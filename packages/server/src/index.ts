export { runServer, ServerExit, type ServerOptions } from './session.js';
export { OpenMessage, ServeRefusal, type Part } from './messages.js';
