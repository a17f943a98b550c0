// The default stylesheet, imported for its effect: `import "waba-onboard/waba-onboard.css";`.
// TypeScript 7 checks that a side-effect import resolves to something it can type.
export {};
