/** The remoting transport's public entry: connections, server, client. */
export { type ChannelOptions, RemotingChannel, type RequestHandler } from './channel.js';
export { defaultClientOptions, parseAddress, RemotingClient, type RemotingClientOptions } from './client.js';
export { defaultServerOptions, RemotingServer, type RemotingServerOptions } from './server.js';
