export {
  ShellSyntaxError, quoteWord, joinWords, readWord, splitWords, splitFields, percentEncodeUnsafe, LITERAL_WORDS, strictWords,
  type WordRules, type Expansion, type ReadWord,
} from './words.js';
