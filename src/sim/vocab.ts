// The simulator's fixed vocabulary: common English words (with and without a
// leading space, lower and capitalised), punctuation and Llama-3 special
// tokens. Generated text only uses these pieces, so every generated word is
// exactly one token. A handful of ids match Llama-3's tokenizer so the NIM
// reference request (`Hello world` -> [9906, 1917]) tokenizes the same.

export const WORDS: readonly string[] = (
  'the of and to in is that it was for on are as with his they at be this from have or by one had not but what ' +
  'all were when we there can an your which their said if do will each about how up out them then she many some ' +
  'so these would other into has more her two like him see time could no make than first been its who now people ' +
  'my made over did down only way find use may water long little very after words called just where most know ' +
  'get through back much before go good new write our used me man too any day same right look think also around ' +
  'another came come work three word must because does part even place well such here take why things help put ' +
  'years different away again off went old number great tell men say small every found still between name should ' +
  'home big give air line set own under read last never us left end along while might next sound below saw ' +
  'something thought both few those always looked show large often together asked house world going want school ' +
  'important until form food keep children feet land side without boy once animals life enough took sometimes ' +
  'four head above kind began almost live page got earth need far hand high year mother light parts country ' +
  'father let night following picture being study second eyes soon times story boys since white days ever paper ' +
  'hard near sentence better best across during today others however sure means knew try told young miles sun ' +
  'ways thing whole hear example heard several change answer room sea against top turned learn point city play ' +
  'toward five using himself usually model data system request token server engine cache memory value stream ' +
  'hello simple quick brown fox lazy dog river mountain forest ocean garden morning evening music art science ' +
  'user assistant system tool ipython environment functions function access following hi please thanks yes'
)
  .split(' ')
  .filter(Boolean);

export const PUNCTUATION: readonly string[] = [
  '!', '"', '#', '$', '%', '&', "'", '(', ')', '*', '+', ',', '-', '.', '/', ':', ';', '<', '=', '>', '?', '@',
  '[', '\\', ']', '^', '_', '`', '{', '|', '}', '~', ' (', ' "', ' -', ' {', ' [', '."', '.\n', ',"', '...',
  '\n', '\n\n', ' ', '  ', '   ', '    ', '\t',
  '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ' 0', ' 1', ' 2', ' 3', ' 4', ' 5', ' 6', ' 7', ' 8', ' 9',
];

/** Ids copied from Llama-3's tokenizer for a few pieces (everything else gets its own stable id). */
export const FIXED_IDS: ReadonlyMap<string, number> = new Map([
  ['!', 0],
  ['"', 1],
  ['#', 2],
  [',', 11],
  ['-', 12],
  ['.', 13],
  ['/', 14],
  ['0', 15],
  ['1', 16],
  [':', 25],
  [';', 26],
  ['?', 30],
  ['\n', 198],
  [' ', 220],
  ['\n\n', 271],
  [' the', 279],
  [' a', 264],
  [' to', 311],
  [' of', 315],
  [' and', 323],
  [' in', 304],
  [' is', 374],
  [' The', 578],
  ['The', 791],
  [' world', 1917],
  ['Hello', 9906],
  ['world', 14957],
  [' Hello', 22691],
]);

export const SPECIAL_TOKENS: ReadonlyArray<readonly [string, number]> = [
  ['<|begin_of_text|>', 128000],
  ['<|end_of_text|>', 128001],
  ['<|start_header_id|>', 128006],
  ['<|end_header_id|>', 128007],
  ['<|eom_id|>', 128008],
  ['<|eot_id|>', 128009],
  ['<|python_tag|>', 128010],
  ['<|image|>', 128256],
];
