// The toolbar checkbox that adds deleted or revoked rows to a list.
export function ShowToggle(props: { label: string; checked: boolean; onChange: (checked: boolean) => void }) {
  return (
    <div class="toolbar">
      <label class="checkbox">
        <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange(e.currentTarget.checked)} />
        {props.label}
      </label>
    </div>
  );
}
