export { type DiffCommand, type DiffOp, formatCommand, parseCommand, CommandSyntaxError } from './command.js';
