export { VERSION, type CommandMain } from "./launch.js";
