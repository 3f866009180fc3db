export type Status = "ok" | "warn" | "fail" | "skip";

/** One finding: what was checked, what was found, and what to do about it. */
export interface Check {
  id: string;
  status: Status;
  title: string;
  detail?: string;
  fix?: string;
}

/** Where an area's checks go, in order. */
export type Add = (c: Check) => void;
