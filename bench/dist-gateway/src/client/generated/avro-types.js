"use strict";
// Generated from schemas/*.avsc by `npm run gen:types`. Do not edit by hand.
/* eslint-disable */
Object.defineProperty(exports, "__esModule", { value: true });
